"""REL-WORKERS, REL-RESILIENCE: a real `serve` and a real worker while PostgreSQL or Redis fails.

A database outage under a working worker loses no task and dead-letters none: every note created
before it gets its word count once the database is back. Redis frozen, then killed, under requests
never gives a 500 or a hang, and the service serves again once Redis is back. Every log line
stays JSON.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx2
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.dev.services import ServiceUrls
from app.tenants.service import NewTenant
from tests.faults.servers import PrivatePostgres, PrivateRedis
from tests.faults.traffic import (
    ServiceRun,
    notes_traffic,
    running_service,
    wait_until_status,
)
from tests.processes import env_for, free_port, start_app
from tests.worker.output import ProcessOutput, not_json_lines

pytestmark = pytest.mark.faults

NOTES = 10
BODY = "one two three"
# With these, 3 attempts (retries of at most 0.5 s apart) would spend a task's budget in under
# 2 s: the outage outlasts that several times, and must spend none of it (requeue pauses are at
# most 0.5 s too).
FAST_RETRIES = {
    "TASK_MAX_RETRIES": "2",
    "TASK_RETRY_BASE_DELAY": "0.2",
    "TASK_RETRY_MAX_DELAY": "0.5",
}
OUTAGE_S = 6.0
SETTLE_S = 60.0
# Redis client timeouts are 0.5 s: a request must end well within this on a loaded machine.
REDIS_REQUEST_BOUND_S = 5.0
REDIS_FREEZE_S = 4.0


async def _owner_fetch(owner_url: str, sql: str, **params: Any) -> list[Any]:
    engine = create_async_engine(owner_url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql), params)).all())
    finally:
        await engine.dispose()


def _counted_and_dead_lettered(urls: ServiceUrls, note_ids: list[str]) -> tuple[set[str], set[str]]:
    """The notes (of `note_ids`) with their word count, and those whose task is dead-lettered."""
    ids = [uuid.UUID(note_id) for note_id in note_ids]
    counted = asyncio.run(
        _owner_fetch(
            urls.owner_database_url,
            "SELECT CAST(id AS text) FROM notes WHERE id = ANY(:ids) AND word_count = 3",
            ids=ids,
        )
    )
    dead = asyncio.run(
        _owner_fetch(
            urls.owner_database_url,
            "SELECT args->>0 FROM dead_letters WHERE task_name = 'notes.count_words' "
            "AND args->>0 = ANY(:ids)",
            ids=note_ids,
        )
    )
    return {row[0] for row in counted}, {row[0] for row in dead}


def _wait_for_every_note(urls: ServiceUrls, note_ids: list[str]) -> tuple[set[str], set[str]]:
    """Poll until every note is counted or dead-lettered (or the deadline passes)."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        counted, dead = _counted_and_dead_lettered(urls, note_ids)
        if counted | dead >= set(note_ids) or time.monotonic() > deadline:
            return counted, dead
        time.sleep(0.5)


def _create_notes(service: ServiceRun, tenant: NewTenant) -> list[str]:
    auth = {"Authorization": f"Bearer {tenant.api_key}"}
    note_ids = []
    with httpx2.Client(timeout=30) as client:
        for n in range(NOTES):
            response = client.post(
                f"{service.base_url}/api/v1/notes",
                json={"title": f"outage {n}", "body": BODY},
                headers={**auth, "Idempotency-Key": f'"{uuid.uuid4()}"'},
            )
            assert response.status_code == 201, response.text
            note_ids.append(str(response.json()["id"]))
    return note_ids


@contextmanager
def _worker(urls: ServiceUrls, queue: str) -> Iterator[ProcessOutput]:
    """A real worker (solo pool) on `urls` and `queue`, with a fast retry policy; stopped after."""
    env = env_for(
        urls,
        TASK_QUEUE=queue,
        LOG_FORMAT="json",
        WORKER_METRICS_PORT=str(free_port()),
        **FAST_RETRIES,
    )
    output = ProcessOutput(start_app(["worker", "--pool", "solo", "--concurrency", "1"], env))
    try:
        yield output
    finally:
        os.kill(output.process.pid, signal.SIGCONT)  # paused by the test, it could not stop
        output.stop()


@contextmanager
def _paused(process: ProcessOutput) -> Iterator[None]:
    """SIGSTOP the worker for the block: the tasks it would run meanwhile wait in the broker."""
    os.kill(process.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(process.process.pid, signal.SIGCONT)


def test_a_database_outage_under_a_working_worker_loses_no_task(
    fault_urls: ServiceUrls, fault_postgres: PrivatePostgres, fault_tenant: NewTenant
) -> None:
    """Notes' tasks meet a PostgreSQL outage longer than their whole retry budget: each goes back
    to the broker without spending it, so none is dropped and none dead-lettered: every note gets
    its word count once PostgreSQL is back, and the worker writes only JSON lines."""
    queue = f"faults-{uuid.uuid4().hex[:10]}"
    with (
        running_service(fault_urls, TASK_QUEUE=queue) as service,
        _worker(fault_urls, queue) as worker,
    ):
        worker.wait_for(lambda line: line["event"] == "worker_started")
        # Paused while the notes are created, the worker meets the outage with every task.
        with _paused(worker):
            note_ids = _create_notes(service, fault_tenant)
            fault_postgres.stop()
        time.sleep(OUTAGE_S)
        fault_postgres.start()
        counted, dead = _wait_for_every_note(fault_urls, note_ids)
    lost = set(note_ids) - counted - dead
    assert not lost, f"tasks lost: {sorted(lost)}\n{worker.tail()}"
    assert not dead, f"tasks dead-lettered for an outage: {sorted(dead)}\n{worker.tail()}"
    assert counted == set(note_ids)
    events = [record["event"] for record in worker.records()]
    assert "task_requeued" in events, "the outage never reached a task"
    assert "task_retry" not in events, "an outage spent a retry"
    assert not_json_lines(worker.stdout) == [], worker.tail()
    assert not_json_lines(worker.stderr) == [], worker.tail()
    assert worker.process.returncode == 0, worker.tail()
    assert "unhandled_exception" not in {event["event"] for event in service.log_events()}
    assert service.returncode == 0, service.stderr[-2000:]


def _serves_again(service: ServiceRun, tenant: NewTenant) -> None:
    """Readiness, a read and a write all succeed (polled: a client reconnects on its own)."""
    auth = {"Authorization": f"Bearer {tenant.api_key}"}
    url = f"{service.base_url}/api/v1/notes"
    assert wait_until_status(lambda: httpx2.get(f"{service.base_url}/health/ready"), 200)
    assert wait_until_status(lambda: httpx2.get(url, headers=auth), 200)
    key = {"Idempotency-Key": f'"after-{uuid.uuid4()}"'}
    assert wait_until_status(
        lambda: httpx2.post(url, json={"title": "after"}, headers={**auth, **key}), 201
    )


def test_redis_frozen_or_killed_under_requests_never_gives_a_500(
    fault_urls: ServiceUrls, fault_redis: PrivateRedis, fault_tenant: NewTenant
) -> None:
    """Redis SIGSTOPped, then SIGKILLed and started again, under reads and writes: every answer
    is 2xx, 429 or 503 within the bound, never a 500; logs stay JSON; the service recovers."""
    with running_service(fault_urls) as service:
        with notes_traffic(service.base_url, fault_tenant) as traffic:
            time.sleep(1.0)
            fault_redis.freeze()
            time.sleep(REDIS_FREEZE_S)
            fault_redis.thaw()
            time.sleep(1.0)
            fault_redis.kill()
            time.sleep(1.0)
            fault_redis.start()
            time.sleep(1.0)
        _serves_again(service, fault_tenant)
    statuses = traffic.statuses()
    assert statuses <= {200, 201, 429, 503}, statuses
    slowest = max(outcome.seconds for outcome in traffic.outcomes)
    assert slowest < REDIS_REQUEST_BOUND_S, f"a request took {slowest:.1f} s"
    events = {event["event"] for event in service.log_events()}  # every line JSON, or this raises
    assert "rate_limit_unavailable" in events, "the Redis fault never reached a request"
    assert "unhandled_exception" not in events
    assert "Traceback" not in service.stderr
    assert service.returncode == 0, service.stderr[-2000:]
