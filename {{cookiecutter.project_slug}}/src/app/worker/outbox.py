"""Transactional outbox: tasks enqueued during a request are rows in the request's transaction.

`enqueue` inserts the row beside the request's own writes, so a rolled-back request enqueues
nothing. The relay publishes committed rows to the broker and marks them, in one transaction:
a broker outage rolls the batch back and the rows wait for the next pass; rows are claimed with
SKIP LOCKED, so two relays never publish the same row at once. A crash after publishing but
before marking publishes a row again, with the same task id: delivery is at-least-once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.logging import get_logger
from app.metrics import OUTBOX_RELAYED
from app.worker.context import CORRELATION_HEADER, TENANT_HEADER, context_headers

log = get_logger("app.outbox")


@dataclass(frozen=True)
class OutboxMessage:
    id: uuid.UUID
    task_name: str
    args: list[Any]
    kwargs: dict[str, Any]
    headers: dict[str, str]


async def enqueue(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    task_name: str,
    *args: Any,
    **kwargs: Any,
) -> uuid.UUID:
    """Queue `task_name(*args, **kwargs)` for after this transaction commits."""
    headers = {**context_headers(), TENANT_HEADER: str(tenant_id)}
    # The request's trace context travels with the row, so the task continues the trace.
    propagate.inject(headers)
    # The id is made here: the runtime role may insert outbox rows but not read them back.
    message_id = uuid.uuid4()
    await session.execute(
        text(
            "INSERT INTO outbox (id, tenant_id, task_name, args, kwargs, headers) VALUES "
            "(:id, :tenant, :task, CAST(:args AS jsonb), CAST(:kwargs AS jsonb), "
            "CAST(:headers AS jsonb))"
        ),
        {
            "id": message_id,
            "tenant": tenant_id,
            "task": task_name,
            "args": json.dumps(list(args)),
            "kwargs": json.dumps(kwargs),
            "headers": json.dumps(headers),
        },
    )
    return message_id


Publish = Callable[[OutboxMessage], None]


async def relay_batch(database: Database, publish: Publish, limit: int = 100) -> int:
    """Publish up to `limit` committed messages; returns how many were relayed."""

    async def work(session: AsyncSession) -> int:
        rows = (
            await session.execute(
                text("SELECT id, task_name, args, kwargs, headers FROM outbox_claim(:n)"),
                {"n": limit},
            )
        ).all()
        messages = [OutboxMessage(r.id, r.task_name, r.args, r.kwargs, r.headers) for r in rows]
        for message in messages:
            # kombu publishes over a blocking socket: keep it off the event loop.
            await asyncio.to_thread(publish, message)
        if messages:
            await session.execute(
                text("SELECT outbox_mark_relayed(:ids)"), {"ids": [m.id for m in messages]}
            )
        return len(messages)

    relayed = await database.run(work, tenant_id=None)
    if relayed:
        OUTBOX_RELAYED.inc(relayed)
        log.info("outbox_relayed", messages=relayed)
    return relayed


def celery_publisher(celery_app: Any) -> Publish:
    """Publish outbox messages as Celery tasks whose id is the outbox row's id."""

    def publish(message: OutboxMessage) -> None:
        token = otel_context.attach(propagate.extract(message.headers))
        try:
            celery_app.send_task(
                message.task_name,
                args=message.args,
                kwargs=message.kwargs,
                task_id=str(message.id),
                headers={
                    k: v
                    for k, v in message.headers.items()
                    if k in (CORRELATION_HEADER, TENANT_HEADER)
                },
            )
        finally:
            otel_context.detach(token)

    return publish


class OutboxRelay:
    """Relays from the API process: right after a request enqueued, and every `interval` s."""

    def __init__(self, database: Database, publish: Publish, interval: float = 2.0) -> None:
        self.database = database
        self.publish = publish
        self.interval = interval
        self.wake = asyncio.Event()

    async def run_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=self.interval)
            self.wake.clear()
            try:
                while await relay_batch(self.database, self.publish) > 0:
                    pass
            except Exception as error:  # noqa: BLE001 - broker or DB down: rows wait, we retry
                log.warning("outbox_relay_failed", error=type(error).__name__)
