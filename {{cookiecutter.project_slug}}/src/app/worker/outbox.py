"""Transactional outbox: tasks enqueued during a request are rows in the request's transaction.

`enqueue` inserts the row beside the request's own writes, so a rolled-back request enqueues
nothing. The relay publishes committed rows to the broker and marks them published, in one
transaction: a broker outage rolls the batch back and the rows wait for the next pass; rows are
claimed with SKIP LOCKED, so two relays never publish the same row at once.

Delivery is end to end: a row is done only when its task has run or was dead-lettered (the worker
marks it, `outbox_completion.py`). A row published but not done within the redelivery deadline
(the broker lost the message, or the done-marking failed) is published again, with the same task
id: delivery is at-least-once, whatever the broker keeps across a restart.
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
from opentelemetry.instrumentation.celery import utils as celery_otel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database, Executor
from app.observability.logging import get_logger
from app.observability.metrics import OUTBOX_RELAYED
from app.settings import get_settings
from app.worker.context import CORRELATION_HEADER, TENANT_HEADER, context_headers

log = get_logger("app.outbox")
# Carries the outbox row's id to the worker, which marks the row done after the task ran.
OUTBOX_HEADER = "app_outbox_id"


@dataclass(frozen=True)
class OutboxMessage:
    id: uuid.UUID
    task_name: str
    args: list[Any]
    kwargs: dict[str, Any]
    headers: dict[str, str]
    publish_count: int = 0


# Built once: `text()` parses its bind parameters each time it is constructed.
_ENQUEUE = text(
    "INSERT INTO outbox (id, tenant_id, task_name, args, kwargs, headers) VALUES "
    "(:id, :tenant, :task, CAST(:args AS jsonb), CAST(:kwargs AS jsonb), CAST(:headers AS jsonb))"
)


async def enqueue(
    session: Executor,
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
        _ENQUEUE,
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


async def relay_batch(
    database: Database, publish: Publish, limit: int = 100, redeliver_after: float | None = None
) -> int:
    """Publish up to `limit` messages that are new, or published but not done for longer than
    `redeliver_after` seconds (default `OUTBOX_REDELIVERY_TIMEOUT`); returns how many."""
    if redeliver_after is None:
        redeliver_after = float(get_settings().outbox_redelivery_timeout)

    async def work(session: AsyncSession) -> list[OutboxMessage]:
        rows = (
            await session.execute(
                text(
                    "SELECT id, task_name, args, kwargs, headers, publish_count "
                    "FROM outbox_claim_due(:n, make_interval(secs => :after))"
                ),
                {"n": limit, "after": redeliver_after},
            )
        ).all()
        messages = [OutboxMessage(*row) for row in rows]
        if messages:
            # kombu publishes over a blocking socket: keep it off the event loop, with one
            # thread hand-off for the batch rather than one per message.
            await asyncio.to_thread(_publish_all, publish, messages)
            await session.execute(
                text("SELECT outbox_mark_published(:ids)"), {"ids": [m.id for m in messages]}
            )
        return messages

    messages = await database.run(work, tenant_id=None)
    if messages:
        OUTBOX_RELAYED.inc(len(messages))
        log.info("outbox_relayed", messages=len(messages))
    again = [str(m.id) for m in messages if m.publish_count > 0]
    if again:
        # Published before and not done since: the broker lost it, or the task is still running.
        log.warning("outbox_republished", messages=len(again), outbox_ids=again)
    return len(messages)


def _publish_all(publish: Publish, messages: list[OutboxMessage]) -> None:
    for message in messages:
        publish(message)


def celery_publisher(celery_app: Any) -> Publish:
    """Publish outbox messages as Celery tasks whose id is the outbox row's id."""

    def publish(message: OutboxMessage) -> None:
        headers = {
            k: v for k, v in message.headers.items() if k in (CORRELATION_HEADER, TENANT_HEADER)
        }
        headers[OUTBOX_HEADER] = str(message.id)
        token = otel_context.attach(propagate.extract(message.headers))
        try:
            celery_app.send_task(
                message.task_name,
                args=message.args,
                kwargs=message.kwargs,
                task_id=str(message.id),
                headers=headers,
            )
        except Exception as error:
            _end_unfinished_publish_span(message.task_name, str(message.id), error)
            raise
        finally:
            otel_context.detach(token)

    return publish


def _end_unfinished_publish_span(task_name: str, task_id: str, error: Exception) -> None:
    """End the producer span the Celery instrumentation left open when the publish raised.

    The instrumentation opens the span and makes it current in `before_task_publish`, and closes
    it in `after_task_publish`, which Celery never sends when the publish raises. Left open, its
    context manager is collected later in another context (when the row is published again) and
    OpenTelemetry logs "Failed to detach context" at error level. Close it here, in the context
    that opened it, with the error on the span. No public API does this (instrumentation 0.66b).
    """
    task = celery_otel.retrieve_task_from_sender({"sender": task_name})
    opened = celery_otel.retrieve_context(task, task_id, is_publish=True)
    if opened is None:
        return
    _span, activation, _token = opened
    celery_otel.detach_context(task, task_id, is_publish=True)
    activation.__exit__(type(error), error, error.__traceback__)


class OutboxRelay:
    """Relays from the API process: right after a request enqueued, and every `interval` s."""

    def __init__(
        self,
        database: Database,
        publish: Publish,
        interval: float = 2.0,
        redeliver_after: float | None = None,
        batch: int = 100,
    ) -> None:
        self.database = database
        self.batch = batch
        self.publish = publish
        self.interval = interval
        self.redeliver_after = redeliver_after
        self.wake = asyncio.Event()

    async def run_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=self.interval)
            self.wake.clear()
            try:
                # A batch short of the limit has emptied what was due; a row committed since has
                # set `wake` again, so the next pass takes it without a claim that finds nothing.
                while (
                    await relay_batch(self.database, self.publish, self.batch, self.redeliver_after)
                    == self.batch
                ):
                    pass
            except Exception as error:  # noqa: BLE001 - broker or DB down: rows wait, we retry
                log.warning("outbox_relay_failed", error=type(error).__name__)
