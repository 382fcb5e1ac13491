"""DATA-TX: serialization failures and deadlocks are retried a bounded number of times; the
runtime role's connections carry statement, lock and idle-in-transaction timeouts."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.engine import DatabaseTimeouts, create_engine
from app.db.errors import connection_problem, domain_error_for
from app.db.retry import backoff_delay, sqlstate_of
from app.db.session import Database
from app.dev.services import ServiceUrls
from app.http.errors import ServiceUnavailableError

# A real PostgreSQL error with the real SQLSTATE, raised by the server on demand.
RAISE_SERIALIZATION_FAILURE = (
    "DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = 'serialization_failure'; END $$"
)


@pytest.fixture
async def database(service_urls: ServiceUrls) -> AsyncIterator[Database]:
    engine = create_engine(
        service_urls.runtime_database_url, DatabaseTimeouts(statement_ms=300, lock_ms=200)
    )
    yield Database(engine, max_attempts=3, base_delay=0.001, max_delay=0.01)
    await engine.dispose()


async def test_a_serialization_failure_is_retried_until_it_succeeds(database: Database) -> None:
    """Two failed attempts, then success: the caller sees only the result."""
    attempts = 0

    async def work(session: AsyncSession) -> str:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            await session.execute(text(RAISE_SERIALIZATION_FAILURE))
        return "done"

    assert await database.run(work, tenant_id=None) == "done"
    assert attempts == 3


async def test_retries_are_bounded_then_a_503_with_retry_after(database: Database) -> None:
    """A transaction that always conflicts stops after max_attempts with a 503 problem."""
    attempts = 0

    async def work(session: AsyncSession) -> None:
        nonlocal attempts
        attempts += 1
        await session.execute(text(RAISE_SERIALIZATION_FAILURE))

    with pytest.raises(ServiceUnavailableError) as caught:
        await database.run(work, tenant_id=None)
    assert attempts == 3
    assert caught.value.response_headers() == {"Retry-After": "1"}


async def test_other_errors_are_not_retried(database: Database) -> None:
    """A bug (here a division by zero) fails at once: retrying could not fix it."""
    attempts = 0

    async def work(session: AsyncSession) -> None:
        nonlocal attempts
        attempts += 1
        await session.execute(text("SELECT 1 / 0"))

    with pytest.raises(DBAPIError):
        await database.run(work, tenant_id=None)
    assert attempts == 1


async def test_runtime_connections_carry_server_side_timeouts(database: Database) -> None:
    """statement_timeout, lock_timeout and idle_in_transaction_session_timeout are set."""

    async def read(session: AsyncSession) -> list[str]:
        names = ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")
        return [str(await session.scalar(text(f"SHOW {name}"))) for name in names]

    assert await database.run(read, tenant_id=None) == ["300ms", "200ms", "10s"]


async def test_a_slow_statement_is_cancelled_and_maps_to_503(database: Database) -> None:
    """A statement past statement_timeout is cancelled (57014), which the API answers with 503."""

    async def slow(session: AsyncSession) -> None:
        await session.execute(text("SELECT pg_sleep(2)"))

    with pytest.raises(DBAPIError) as caught:
        await database.run(slow, tenant_id=None)
    assert sqlstate_of(caught.value) == "57014"
    assert isinstance(domain_error_for("57014"), ServiceUnavailableError)


@pytest.mark.parametrize("attempt", [0, 1, 3, 10, 60])
def test_backoff_is_full_jitter_and_capped(attempt: int) -> None:
    """Delays stay within [0, min(cap, base * 2**attempt)] and actually vary."""
    rng = random.Random(attempt)  # noqa: S311 - reproducible jitter, not cryptography
    delays = [backoff_delay(attempt, base=0.05, cap=1.0, rng=rng) for _ in range(200)]
    ceiling = min(1.0, 0.05 * 2**attempt)
    assert all(0 <= delay <= ceiling for delay in delays)
    assert len(set(delays)) > 100


async def test_an_exhausted_pool_fails_within_its_timeout(service_urls: ServiceUrls) -> None:
    """Waiting for a connection is bounded by the pool timeout (then a 503), never a hang."""
    engine = create_engine(
        service_urls.runtime_database_url, pool_size=1, max_overflow=0, pool_timeout=0.3
    )
    database = Database(engine)
    release = asyncio.Event()

    async def hold(_: AsyncSession) -> None:
        await release.wait()

    async def nothing(_: AsyncSession) -> None:
        return None

    holder = asyncio.create_task(database.run(hold, tenant_id=None))
    await asyncio.sleep(0.2)  # the holder has the only connection
    try:
        async with asyncio.timeout(3):
            with pytest.raises(PoolTimeoutError):
                await database.run(nothing, tenant_id=None)
    finally:
        release.set()
        await holder
        await engine.dispose()


async def test_the_driver_deadline_ends_a_statement_the_server_does_not_end(
    database: Database,
) -> None:
    """statement_timeout off (as when the server is stalled): the driver gives up after
    statement timeout + 1 s with a timeout the API answers with 503; the pool still works."""

    async def unbounded(session: AsyncSession) -> None:
        await session.execute(text("SET LOCAL statement_timeout = 0"))
        await session.execute(text("SELECT pg_sleep(10)"))

    started = time.monotonic()
    with pytest.raises(TimeoutError) as caught:
        await database.run(unbounded, tenant_id=None)
    assert time.monotonic() - started < 5  # the deadline is 1.3 s; pg_sleep would take 10
    assert connection_problem(caught.value) == "timeout"

    async def one(session: AsyncSession) -> int:
        return int(await session.scalar(text("SELECT 1")))

    assert await database.run(one, tenant_id=None) == 1


def test_the_driver_deadline_is_the_statement_timeout_plus_a_margin() -> None:
    """The client-side deadline follows DB_STATEMENT_TIMEOUT_MS, 1 s later than the server's."""
    assert DatabaseTimeouts(statement_ms=300).client_s == 1.3
    assert DatabaseTimeouts(statement_ms=5_000).client_s == 6.0
