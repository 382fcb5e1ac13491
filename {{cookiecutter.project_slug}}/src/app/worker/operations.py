"""Operator commands on the worker: `dlq list|replay|purge|drill`, run as the owner role."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from app.db.session import Database
from app.settings import Settings
from app.worker import dead_letter
from app.worker.celery_app import create_celery
from app.worker.context import CORRELATION_HEADER, TENANT_HEADER
from app.worker.tasks import DRILL_TASK

T = TypeVar("T")


def _as_owner(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    if settings.database_owner_url is None:
        raise ValueError("DATABASE_OWNER_URL is required for dlq commands")
    owner_url = settings.database_owner_url.get_secret_value()

    async def run() -> T:
        engine = create_async_engine(owner_url, hide_parameters=True)
        try:
            return await Database(engine).run(work, tenant_id=None)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def dlq_list(settings: Settings, as_json: bool) -> list[str]:
    """Lines to print: one JSON object per dead letter, or a human-readable table."""

    async def work(session: AsyncSession) -> list[str]:
        letters = await dead_letter.list_all(session)
        if as_json:
            return [json.dumps(dead_letter.as_dict(letter)) for letter in letters]
        return [
            f"{letter.id}  {letter.task_name}  {letter.exception_type}: {letter.message[:60]}  "
            f"attempts={letter.attempts} replays={letter.replay_count}"
            for letter in letters
        ]

    return _as_owner(settings, work)


def dlq_replay(settings: Settings, dead_letter_id: str) -> str | None:
    """Re-enqueue the dead letter's task with its context; returns the new task id."""

    async def work(session: AsyncSession) -> str | None:
        letter = await dead_letter.get(session, dead_letter_id)
        if letter is None:
            return None
        headers = {CORRELATION_HEADER: letter.correlation_id or dead_letter_id}
        if letter.tenant_id:
            headers[TENANT_HEADER] = str(letter.tenant_id)
        task_id = str(uuid.uuid4())
        # Publish, then mark: a crash in between leaves a replay unmarked, never a lost one.
        await asyncio.to_thread(
            create_celery(settings).send_task,
            letter.task_name,
            args=letter.args,
            kwargs=letter.kwargs,
            task_id=task_id,
            headers=headers,
        )
        await dead_letter.mark_replayed(session, dead_letter_id)
        return task_id

    return _as_owner(settings, work)


def dlq_purge(settings: Settings) -> int:
    """Delete every dead letter; returns how many."""
    return _as_owner(settings, lambda session: dead_letter.purge(session))


def dlq_drill(settings: Settings) -> str:
    """Enqueue a task that always fails, to exercise retries, the DLQ and its alerts."""
    task_id = f"drill-{uuid.uuid4()}"
    create_celery(settings).send_task(DRILL_TASK, task_id=task_id)
    return task_id
