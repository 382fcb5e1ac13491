"""End-to-end delivery: an outbox row is done once its task has run, not when it was published.

A row the broker lost after the relay published it (a Redis restart without persistence) is
published again after the redelivery deadline, with the same task id, and its effect lands once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from app.db.engine import create_engine
from app.db.session import Database
from app.dev.services import ServiceUrls
from app.notes.tasks import COUNT_WORDS
from app.settings import Settings
from app.tenants.service import NewTenant
from app.worker.celery_app import create_celery
from app.worker.outbox import OutboxMessage, Publish, celery_publisher, enqueue, relay_batch
from app.worker.tasks import DRILL_TASK
from tests.services import drop_queue
from tests.worker.leftovers import settle_other_rows
from tests.worker.output import ProcessOutput
from tests.worker.test_dead_letters import _wait_for

DEADLINE = 1.5


@pytest.fixture
async def database(service_urls: ServiceUrls) -> AsyncIterator[Database]:
    engine = create_engine(service_urls.runtime_database_url)
    yield Database(engine)
    await engine.dispose()


async def _owner_query(service_urls: ServiceUrls, sql: str, **params: Any) -> Any:
    engine = create_async_engine(service_urls.owner_database_url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text(sql), params)).one()
    finally:
        await engine.dispose()


async def _outbox_row(service_urls: ServiceUrls, row_id: uuid.UUID) -> Any:
    return await _owner_query(
        service_urls,
        "SELECT relayed_at, done_at, publish_count FROM outbox WHERE id = :id",
        id=row_id,
    )


async def _note_with_task(
    database: Database, tenant: NewTenant, body: str
) -> tuple[str, uuid.UUID]:
    async def work(session: AsyncSession) -> tuple[str, uuid.UUID]:
        note_id = (
            await session.execute(
                text(
                    "INSERT INTO notes (tenant_id, title, body) VALUES (:t, 'n', :b) RETURNING id"
                ),
                {"t": tenant.tenant_id, "b": body},
            )
        ).scalar_one()
        row_id = await enqueue(session, tenant.tenant_id, COUNT_WORDS, str(note_id))
        return str(note_id), row_id

    return await database.run(work, tenant.tenant_id)


async def _wait_until_done(service_urls: ServiceUrls, row_id: uuid.UUID) -> Any:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        row = await _outbox_row(service_urls, row_id)
        if row.done_at is not None:
            return row
        await asyncio.sleep(0.2)
    raise AssertionError(f"outbox row {row_id} was never marked done")


def _recording(publish: Publish, seen: list[uuid.UUID]) -> Publish:
    def record(message: OutboxMessage) -> None:
        seen.append(message.id)
        publish(message)

    return record


async def _drain(database: Database, publish: Publish) -> None:
    while await relay_batch(database, publish, redeliver_after=DEADLINE):
        pass


async def test_a_message_the_broker_lost_is_published_again_and_runs_once(
    worker: ProcessOutput,
    worker_settings: Settings,
    service_urls: ServiceUrls,
    database: Database,
    new_tenant: Callable[[], NewTenant],
) -> None:
    """Published then lost: not done, re-published after the deadline, done once it ran."""
    note_id, row_id = await _note_with_task(database, new_tenant(), "one two three")
    await settle_other_rows(service_urls.owner_database_url, row_id)
    lost_queue = f"lost-{uuid.uuid4().hex[:10]}"
    lost = create_celery(worker_settings.model_copy(update={"task_queue": lost_queue}))
    await _drain(database, celery_publisher(lost))
    drop_queue(service_urls.redis_url, lost_queue)  # the broker restarts with nothing queued
    assert (await _outbox_row(service_urls, row_id)).done_at is None
    seen: list[uuid.UUID] = []
    publish = _recording(celery_publisher(create_celery(worker_settings)), seen)
    await _drain(database, publish)
    assert row_id not in seen, "re-published before the redelivery deadline"
    await asyncio.sleep(DEADLINE + 0.2)
    await _drain(database, publish)
    assert seen.count(row_id) == 1
    done = await _wait_until_done(service_urls, row_id)
    assert done.publish_count == 2
    counted = await _owner_query(
        service_urls, "SELECT word_count FROM notes WHERE id = :id", id=uuid.UUID(note_id)
    )
    assert counted.word_count == 3
    await asyncio.sleep(DEADLINE + 0.2)
    await _drain(database, publish)
    assert seen.count(row_id) == 1, "a done row was published again"


async def test_a_dead_lettered_tasks_row_is_done(
    worker: ProcessOutput,
    worker_settings: Settings,
    service_urls: ServiceUrls,
    database: Database,
    new_tenant: Callable[[], NewTenant],
) -> None:
    """A task retried, then dead-lettered, has its row done after the dead letter, not before."""
    tenant = new_tenant()

    async def work(session: AsyncSession) -> uuid.UUID:
        return await enqueue(session, tenant.tenant_id, DRILL_TASK, "outbox drill")

    row_id = await database.run(work, tenant.tenant_id)
    await settle_other_rows(service_urls.owner_database_url, row_id)
    await _drain(database, celery_publisher(create_celery(worker_settings)))
    letter = await asyncio.to_thread(_wait_for, worker_settings, str(row_id))
    assert letter["attempts"] == 3
    done = await _wait_until_done(service_urls, row_id)
    assert done.publish_count == 1
    # Done after the last attempt, not at the first retry.
    order = await _owner_query(
        service_urls,
        "SELECT o.done_at >= d.last_failed_at AS after FROM outbox o "
        "JOIN dead_letters d ON d.id = CAST(o.id AS text) WHERE o.id = :id",
        id=row_id,
    )
    assert order.after


def test_a_redelivery_deadline_inside_one_tasks_attempts_is_refused() -> None:
    """A deadline shorter than a task's attempts and retry delays would re-publish running tasks."""
    with pytest.raises(ValidationError) as caught:
        Settings(outbox_redelivery_timeout=600)  # the defaults need more than 6 * 90 + 5 * 60
    assert "TASK_MAX_RETRIES" in str(caught.value)
    assert Settings(outbox_redelivery_timeout=841).outbox_redelivery_timeout == 841
