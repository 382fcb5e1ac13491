"""The worker marks an outbox row done once its task has run: delivery is end to end.

A `task_postrun` handler sees every task end. When the task came from the outbox (it carries the
`app_outbox_id` header) and ended in SUCCESS, the row is marked done. `reliable_task` returns
normally after dead-lettering a task, so a dead-lettered task's row is done too; a retry (state
RETRY) leaves it pending. The handler runs before the message is acknowledged.

If marking fails (PostgreSQL down), the row stays pending and the relay publishes it again after
OUTBOX_REDELIVERY_TIMEOUT: the task runs once more, which tasks must tolerate (at-least-once).
"""

from __future__ import annotations

import uuid
from typing import Any

from celery import Task, states
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.observability.logging import get_logger
from app.worker.outbox import OUTBOX_HEADER
from app.worker.runtime import run_async, worker_database

log = get_logger("app.outbox")


async def mark_done(session: AsyncSession, row_id: uuid.UUID) -> None:
    """Mark outbox row `row_id` done (its task ran); marking it twice changes nothing."""
    await session.execute(text("SELECT outbox_mark_done(:id)"), {"id": row_id})


def mark_outbox_row_done(task: Task | None = None, state: str | None = None, **_: Any) -> None:
    """`task_postrun` handler: a task from the outbox that ended in SUCCESS has its row done."""
    row = getattr(task.request, OUTBOX_HEADER, None) if task is not None else None
    if row is None or state != states.SUCCESS:
        return
    try:
        row_id = uuid.UUID(str(row))
        run_async(lambda: worker_database().run(lambda s: mark_done(s, row_id), tenant_id=None))
    except Exception as error:  # noqa: BLE001 - the relay publishes the row again after the deadline
        log.warning("outbox_mark_done_failed", outbox_id=str(row), error=type(error).__name__)
