"""Transactions: the only place in the service that commits or rolls back.

Services receive a session, read and flush; they never commit. `Database.run` owns the transaction,
sets the tenant inside it, and re-runs the whole unit of work on a serialization failure or a
deadlock, a bounded number of times with jittered backoff, then answers 503 with `Retry-After`.
`Database.run_core` is the same for work that only runs Core statements: it gets the
transaction's connection instead of an ORM session, which work that builds no ORM object does not
need (docs/performance.md: an idempotent POST cost 15 % fewer instructions without the session).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, TypeVar
from weakref import WeakKeyDictionary

from fastapi import Depends, Request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.pool import QueuePool

from app.db.retry import backoff_delay, is_retryable, sqlstate_of
from app.db.tenancy import set_tenant
from app.http.errors import ServiceUnavailableError
from app.observability.logging import get_logger

T = TypeVar("T")
Scope = TypeVar("Scope", AsyncSession, AsyncConnection)
# Where Core statements run: in an ORM session's transaction (`run`) or on a bare connection's
# (`run_core`); both execute a statement the same way.
Executor = AsyncSession | AsyncConnection
log = get_logger("app.db")


class Database:
    """Owns the engine's sessions and the transaction boundary."""

    def __init__(
        self,
        engine: AsyncEngine,
        max_attempts: int = 3,
        base_delay: float = 0.05,
        max_delay: float = 1.0,
    ) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        pool = engine.sync_engine.pool
        # The pool's own capacity and wait, enforced in arrival order (see `_admit`).
        self._capacity = (
            pool.size() + max(pool._max_overflow, 0) if isinstance(pool, QueuePool) else None
        )
        self._wait_s = pool.timeout() if isinstance(pool, QueuePool) else 0.0
        self._gates: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            WeakKeyDictionary()
        )

    async def _admit(self) -> asyncio.Semaphore | None:
        """Wait for a free connection first come, first served, at most the pool's timeout; the
        caller releases the gate it gets back.

        The pool's own queue lets a newcomer take a connection that was just handed to a waiter,
        so under overload some requests starve past any timeout while others pass. asyncio's
        Semaphore never lets a newcomer overtake a waiter: the wait becomes the queue length
        divided by the throughput for every request alike. Timing out is the pool's error, so
        still a 503.
        """
        if self._capacity is None:
            return None
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = asyncio.Semaphore(self._capacity)
        if gate.locked():  # wait in line
            try:
                async with asyncio.timeout(self._wait_s):
                    await gate.acquire()
            except TimeoutError:
                raise PoolTimeoutError(f"no database connection within {self._wait_s} s") from None
        else:  # a free connection: taken at once, no timer to arm and cancel on every request
            await gate.acquire()
        return gate

    @asynccontextmanager
    async def transaction(self, tenant_id: uuid.UUID | None) -> AsyncIterator[AsyncSession]:
        """One transaction, scoped to `tenant_id` if given: commits on success, else rolls back."""
        gate = await self._admit()
        try:
            async with self.sessions() as session, session.begin():
                if tenant_id is not None:
                    await set_tenant(session, tenant_id)
                yield session
        finally:
            if gate is not None:
                gate.release()

    async def _in_session(
        self, work: Callable[[AsyncSession], Awaitable[T]], tenant_id: uuid.UUID | None
    ) -> T:
        async with self.transaction(tenant_id) as session:
            return await work(session)

    # `run_core` opens its transaction here rather than through context managers: one made by
    # `asynccontextmanager` costs about 20 Python calls to enter and leave, and this runs on every
    # read and every idempotent create (docs/performance.md).
    async def _on_connection(
        self, work: Callable[[AsyncConnection], Awaitable[T]], tenant_id: uuid.UUID | None
    ) -> T:
        gate = await self._admit()
        try:
            async with self.engine.begin() as connection:
                if tenant_id is not None:
                    await set_tenant(connection, tenant_id)
                return await work(connection)
        finally:
            if gate is not None:
                gate.release()

    async def run(
        self, work: Callable[[AsyncSession], Awaitable[T]], tenant_id: uuid.UUID | None
    ) -> T:
        """Run `work` in a transaction, retrying it whole on serialization failures/deadlocks.

        `work` may run more than once, so it must not have side effects outside the database.
        """
        return await self._retried(self._in_session, work, tenant_id)

    async def run_core(
        self, work: Callable[[AsyncConnection], Awaitable[T]], tenant_id: uuid.UUID | None
    ) -> T:
        """`run` for work of Core statements only (no ORM object): on the bare connection."""
        return await self._retried(self._on_connection, work, tenant_id)

    async def _retried(
        self,
        in_transaction: Callable[[Callable[[Scope], Awaitable[T]], uuid.UUID | None], Awaitable[T]],
        work: Callable[[Scope], Awaitable[T]],
        tenant_id: uuid.UUID | None,
    ) -> T:
        for attempt in range(self.max_attempts):
            try:
                return await in_transaction(work, tenant_id)
            except DBAPIError as error:
                if not is_retryable(error):
                    raise
                if attempt + 1 == self.max_attempts:
                    log.warning(
                        "transaction_gave_up", attempts=attempt + 1, sqlstate=sqlstate_of(error)
                    )
                    raise ServiceUnavailableError(
                        "The database is busy with conflicting work; retry shortly.",
                        retry_after=1,
                    ) from error
                delay = backoff_delay(attempt, self.base_delay, self.max_delay)
                log.info(
                    "transaction_retry",
                    attempt=attempt + 1,
                    sqlstate=sqlstate_of(error),
                    delay_s=round(delay, 3),
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")


async def get_database(request: Request) -> Database:
    # `async def` though it awaits nothing: FastAPI runs a plain `def` dependency in its thread
    # pool, and that hand-off cost more than the whole query (docs/performance.md).
    database: Database = request.app.state.database
    return database


DatabaseDep = Annotated[Database, Depends(get_database)]
