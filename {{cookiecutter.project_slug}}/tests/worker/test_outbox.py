"""Durable hand-off: the outbox commits with the request, survives broker outages, relays once."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from app.db.engine import create_engine
from app.db.session import Database
from app.dev.services import ServiceUrls
from app.main import create_app
from app.notes.tasks import COUNT_WORDS
from app.settings import Settings
from app.tenants.service import NewTenant
from app.worker import operations
from app.worker.celery_app import create_celery
from app.worker.context import publishing_tenant
from app.worker.outbox import OutboxMessage, OutboxRelay, celery_publisher, enqueue, relay_batch
from app.worker.tasks import DRILL_TASK
from tests.notes.test_notes_api import auth, fresh_key
from tests.processes import free_port
from tests.worker.output import ProcessOutput
from tests.worker.test_dead_letters import _wait_for


@pytest.fixture
async def database(service_urls: ServiceUrls) -> AsyncIterator[Database]:
    engine = create_engine(service_urls.runtime_database_url)
    yield Database(engine)
    await engine.dispose()


async def _unrelayed(service_urls: ServiceUrls, ids: list[uuid.UUID]) -> int:
    engine = create_async_engine(service_urls.owner_database_url)
    try:
        async with engine.connect() as conn:
            count = await conn.scalar(
                text("SELECT count(*) FROM outbox WHERE id = ANY(:ids) AND relayed_at IS NULL"),
                {"ids": ids},
            )
            return int(count or 0)
    finally:
        await engine.dispose()


async def _enqueue(database: Database, tenant: NewTenant, note_id: str) -> uuid.UUID:
    async def work(session: AsyncSession) -> uuid.UUID:
        return await enqueue(session, tenant.tenant_id, COUNT_WORDS, note_id)

    return await database.run(work, tenant.tenant_id)


def _word_count(client: TestClient, tenant: NewTenant, note_id: str, expected: int) -> object:
    deadline = time.monotonic() + 60
    count = None
    while time.monotonic() < deadline:
        count = client.get(f"/api/v1/notes/{note_id}", headers=auth(tenant)).json()["word_count"]
        if count == expected:
            return count
        time.sleep(0.2)
    return count


def test_a_new_note_gets_its_word_count_from_the_worker(
    worker: ProcessOutput,
    make_settings: Callable[..., Settings],
    worker_env: dict[str, str],
    new_tenant: Callable[[], NewTenant],
) -> None:
    """POST commits the note and its task together; the relay and the worker fill word_count."""
    tenant = new_tenant()
    app = create_app(make_settings(task_queue=worker_env["TASK_QUEUE"]))
    with TestClient(app) as client:
        created = client.post(
            "/api/v1/notes",
            json={"title": "t", "body": "one two  three"},
            headers=fresh_key(tenant),
        ).json()
        assert created["word_count"] is None
        assert _word_count(client, tenant, created["id"], 3) == 3, worker.tail()


async def test_a_rolled_back_request_enqueues_nothing(
    database: Database, service_urls: ServiceUrls, new_tenant: Callable[[], NewTenant]
) -> None:
    """A task queued in a transaction that fails is gone with it."""
    tenant = new_tenant()
    queued: list[uuid.UUID] = []

    async def work(session: AsyncSession) -> None:
        queued.append(await enqueue(session, tenant.tenant_id, COUNT_WORDS, str(uuid.uuid4())))
        raise RuntimeError("the request failed after queueing")

    with pytest.raises(RuntimeError):
        await database.run(work, tenant.tenant_id)
    engine = create_async_engine(service_urls.owner_database_url)
    try:
        async with engine.connect() as conn:
            found = await conn.scalar(
                text("SELECT count(*) FROM outbox WHERE id = :id"), {"id": queued[0]}
            )
    finally:
        await engine.dispose()
    assert found == 0


async def test_the_outbox_waits_out_a_broker_outage(
    database: Database,
    service_urls: ServiceUrls,
    worker_settings: Settings,
    new_tenant: Callable[[], NewTenant],
) -> None:
    """Relaying to a dead broker fails and keeps the rows; once it is back they are relayed."""
    tenant = new_tenant()
    message_id = await _enqueue(database, tenant, str(uuid.uuid4()))
    dead = worker_settings.model_copy(
        update={
            "redis_url": None,
            "celery_broker_url": _secret(f"redis://127.0.0.1:{free_port()}/0"),
        }
    )
    broken = create_celery(dead)
    broken.conf.broker_connection_timeout = 0.5
    broken.conf.broker_transport_options = {"max_retries": 1}
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the broker client raises
        await relay_batch(database, celery_publisher(broken))
    assert await _unrelayed(service_urls, [message_id]) == 1
    while await relay_batch(database, celery_publisher(create_celery(worker_settings))):
        pass
    assert await _unrelayed(service_urls, [message_id]) == 0


async def test_two_relays_at_once_publish_each_row_once(
    database: Database, new_tenant: Callable[[], NewTenant]
) -> None:
    """Concurrent relays claim disjoint rows (SKIP LOCKED): no message is published twice."""
    tenant = new_tenant()
    ids = [await _enqueue(database, tenant, str(uuid.uuid4())) for _ in range(20)]
    published: list[uuid.UUID] = []
    lock = threading.Lock()

    def record(message: OutboxMessage) -> None:
        time.sleep(0.01)
        with lock:
            published.append(message.id)

    async def drain() -> None:
        while await relay_batch(database, record, limit=3):
            pass

    await asyncio.gather(drain(), drain())
    ours = [message_id for message_id in published if message_id in set(ids)]
    assert sorted(ours) == sorted(ids)


async def test_one_wake_drains_a_backlog_larger_than_a_batch(
    database: Database, new_tenant: Callable[[], NewTenant]
) -> None:
    """A full batch means more may be due: the relay claims again at once, not at its next tick."""
    tenant = new_tenant()
    ids = {await _enqueue(database, tenant, str(uuid.uuid4())) for _ in range(7)}
    published: set[uuid.UUID] = set()
    all_published = threading.Event()

    def record(message: OutboxMessage) -> None:  # runs in the relay's publishing thread
        published.add(message.id)
        if ids <= published:
            all_published.set()

    relay = OutboxRelay(database, record, interval=60, batch=3)
    relaying = asyncio.create_task(relay.run_forever())
    try:
        relay.wake.set()
        await asyncio.to_thread(all_published.wait, 10)
    finally:
        relaying.cancel()
    assert ids <= published


def test_the_task_carries_the_request_id_and_tenant(
    worker: ProcessOutput, worker_settings: Settings, new_tenant: Callable[[], NewTenant]
) -> None:
    """Published inside a request, a task's dead letter names that request and tenant."""
    tenant = new_tenant()
    structlog.contextvars.bind_contextvars(request_id="req-ctx-42")
    token = publishing_tenant.set(tenant.tenant_id)
    try:
        task_id = f"ctx-{uuid.uuid4()}"
        create_celery(worker_settings).send_task(DRILL_TASK, task_id=task_id)
    finally:
        publishing_tenant.reset(token)
        structlog.contextvars.unbind_contextvars("request_id")
    letter = _wait_for(worker_settings, task_id)
    assert letter["correlation_id"] == "req-ctx-42"
    assert letter["tenant_id"] == str(tenant.tenant_id)
    assert operations.dlq_list(worker_settings, as_json=False)


def _secret(value: str) -> Any:
    from pydantic import SecretStr

    return SecretStr(value)
