"""REL-WORKERS during a PostgreSQL outage: a task that cannot reach the database is retried, and
one whose dead letter cannot be written either goes back to the broker. Nothing is dropped."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2
import pytest
from redis import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.engine import create_engine
from app.db.session import Database
from app.dev.services import ServiceUrls
from app.notes import repository
from app.notes.tasks import COUNT_WORDS
from app.settings import Settings
from app.tenants.service import NewTenant
from app.worker.celery_app import create_celery
from app.worker.context import TENANT_HEADER
from app.worker.policy import decide
from app.worker.tasks import retry_policy
from tests.processes import free_port, start_app
from tests.services import drop_queue
from tests.worker.outage_tasks import OUTAGE_TASK
from tests.worker.output import ProcessOutput, metric_value


@pytest.fixture
async def database(service_urls: ServiceUrls) -> AsyncIterator[Database]:
    engine = create_engine(service_urls.runtime_database_url)
    yield Database(engine)
    await engine.dispose()


async def _failure_of(database: Database, sql: str) -> Exception:
    async def work(session: AsyncSession) -> None:
        await session.execute(text(sql))

    try:
        await database.run(work, tenant_id=None)
    except Exception as error:  # noqa: BLE001 - the test wants whatever the driver raised
        return error
    raise AssertionError(f"{sql} did not fail")


async def test_a_refused_connection_is_retried() -> None:
    """The error a worker really gets from a database that is down is a retry, not a dead letter."""
    engine = create_engine(f"postgresql+asyncpg://app@127.0.0.1:{free_port()}/app")
    try:
        error = await _failure_of(Database(engine), "SELECT 1")
    finally:
        await engine.dispose()
    assert decide(error, 0, retry_policy(), transient=()).action == "retry", repr(error)


async def test_a_connection_killed_by_the_server_is_retried(database: Database) -> None:
    """A backend terminated mid-transaction (failover, restart) reaches the task through
    SQLAlchemy's wrapping (SQLSTATE 08003) and is retried."""
    error = await _failure_of(database, "SELECT pg_terminate_backend(pg_backend_pid())")
    assert decide(error, 0, retry_policy(), transient=()).action == "retry", repr(error)


async def _new_note(database: Database, tenant: NewTenant) -> str:
    async def create(session: AsyncSession) -> str:
        return str((await repository.insert(session, tenant.tenant_id, "t", "one two three")).id)

    return await database.run(create, tenant.tenant_id)


async def _wait_for_word_count(database: Database, tenant: NewTenant, note_id: str) -> None:
    async def word_count(session: AsyncSession) -> Any:
        query = text("SELECT word_count FROM notes WHERE id = :id")
        return await session.scalar(query, {"id": note_id})

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if await database.run(word_count, tenant.tenant_id) == 3:
            return
        await asyncio.sleep(0.3)
    raise AssertionError("the task never ran once the database was back")


async def test_a_task_in_a_database_outage_is_retried_then_kept_in_the_broker(
    worker_env: dict[str, str],
    worker_settings: Settings,
    database: Database,
    new_tenant: Callable[[], NewTenant],
) -> None:
    """Worker's DATABASE_URL refuses connections: each attempt goes back to the broker after a
    pause, without spending a retry, more times than the budget allows (TASK_MAX_RETRIES=2), and
    is never dead-lettered; after the worker stops it is still queued, and a worker on the
    recovered database does the work."""
    tenant, queue = new_tenant(), f"test-{uuid.uuid4().hex[:10]}"
    note_id = await _new_note(database, tenant)
    env = {**worker_env, "TASK_QUEUE": queue, "WORKER_METRICS_PORT": str(free_port())}
    down = {**env, "DATABASE_URL": f"postgresql://app@127.0.0.1:{free_port()}/app"}
    output = ProcessOutput(start_app(["worker", "--pool", "solo"], down))
    task_id = str(uuid.uuid4())
    try:
        create_celery(worker_settings.model_copy(update={"task_queue": queue})).send_task(
            COUNT_WORDS,
            args=[note_id],
            task_id=task_id,
            headers={TENANT_HEADER: str(tenant.tenant_id)},
        )

        def requeued(line: dict[str, Any]) -> bool:
            return line["event"] == "task_requeued" and line.get("task_id") == task_id

        # Back in the broker means delivered again: more attempts than the budget of 3.
        output.wait_for(lambda _: sum(requeued(line) for line in output.records()) >= 4)
        metrics = httpx2.get(f"http://127.0.0.1:{env['WORKER_METRICS_PORT']}/metrics").text
    finally:
        assert output.stop() == 0, output.tail()
    own = [line for line in output.records() if line.get("task_id") == task_id]
    requeues = [line for line in own if requeued(line)]
    assert {line["reason"] for line in requeues} == {"dependency outage: unreachable"}
    assert {line["attempts"] for line in requeues} == {1}, "an outage spent a retry"
    assert not [line for line in own if line["event"] in ("task_retry", "task_dead_lettered")]
    counted = 'task="notes.count_words"'
    assert metric_value(metrics, "task_runs_total", f'{counted},outcome="requeued"') >= 4

    assert worker_settings.redis_url is not None
    redis = Redis.from_url(worker_settings.redis_url.get_secret_value())
    try:
        assert any(task_id.encode() in message for message in redis.lrange(queue, 0, -1))
    finally:
        redis.close()
    healthy = ProcessOutput(start_app(["worker", "--pool", "solo"], env))
    try:
        await _wait_for_word_count(database, tenant, note_id)
    finally:
        healthy.stop()
        drop_queue(worker_settings.redis_url.get_secret_value(), queue)


def test_an_outage_of_the_services_database_does_not_spend_the_retry_budget(
    worker_env: dict[str, str], worker_settings: Settings
) -> None:
    """A task whose first 5 attempts lose their database connection (more than the budget of
    TASK_MAX_RETRIES=2 retries) while PostgreSQL is up, so a dead letter could be written: each
    attempt goes back to the broker without spending a retry, and the 6th applies the effect.
    Nothing is dead-lettered, nothing counted as a retry."""
    key, queue = f"outage-{uuid.uuid4().hex}", f"test-{uuid.uuid4().hex[:10]}"
    env = {**worker_env, "TASK_QUEUE": queue, "WORKER_METRICS_PORT": str(free_port())}
    args = ["worker", "--pool", "solo", "--include", "tests.worker.outage_tasks"]
    output = ProcessOutput(start_app(args, env))
    assert worker_settings.redis_url is not None
    redis = Redis.from_url(worker_settings.redis_url.get_secret_value())
    task_id = str(uuid.uuid4())
    try:
        publisher = create_celery(worker_settings.model_copy(update={"task_queue": queue}))
        publisher.send_task(OUTAGE_TASK, args=[key, 5], task_id=task_id)
        deadline = time.monotonic() + 60
        while redis.get(f"{key}:effect") is None and time.monotonic() < deadline:
            assert output.process.poll() is None, output.tail()
            events = {line["event"] for line in output.records()}
            assert "task_dead_lettered" not in events, output.tail()
            time.sleep(0.2)
    finally:
        assert output.stop() == 0, output.tail()
        drop_queue(worker_settings.redis_url.get_secret_value(), queue)
    try:
        assert redis.get(f"{key}:effect") == b"1", output.tail()
        assert redis.get(f"{key}:attempts") == b"6"
    finally:
        redis.delete(f"{key}:effect", f"{key}:attempts")
        redis.close()
    own = [line for line in output.records() if line.get("task_id") == task_id]
    requeued = [line for line in own if line["event"] == "task_requeued"]
    assert len(requeued) == 5, output.tail()
    assert all(line["reason"].startswith("dependency outage") for line in requeued)
    assert {line["attempts"] for line in requeued} == {1}, "a requeue spent a retry"
    assert not [line for line in own if line["event"] in ("task_retry", "task_dead_lettered")]
