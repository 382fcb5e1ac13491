"""Database access from (synchronous) Celery tasks: one event loop and one engine per process.

The worker's `Database` tells the task policy when it is the service's own database that cannot
be reached (`DependencyOutageError`): such a failure costs a task none of its retries.
"""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.engine import DatabaseTimeouts, create_engine
from app.db.session import Database
from app.settings import get_settings
from app.worker.policy import DependencyOutageError, outage

T = TypeVar("T")
_runner: asyncio.Runner | None = None
_database: Database | None = None


class WorkerDatabase(Database):
    """A `Database` whose connection-class failures leave `run` as DependencyOutageError."""

    async def run(
        self, work: Callable[[AsyncSession], Awaitable[T]], tenant_id: uuid.UUID | None
    ) -> T:
        try:
            return await super().run(work, tenant_id)
        except Exception as error:
            problem = outage(error)
            if problem is None:
                raise
            raise DependencyOutageError(problem) from error


def worker_database() -> Database:
    """This process's `Database`, created at first use (after the worker forked)."""
    global _database
    if _database is None:
        settings = get_settings()
        if settings.database_url is None:
            raise RuntimeError("DATABASE_URL is required for the worker")
        timeouts = DatabaseTimeouts(
            statement_ms=settings.db_statement_timeout_ms,
            lock_ms=settings.db_lock_timeout_ms,
            idle_in_transaction_ms=settings.db_idle_in_transaction_timeout_ms,
        )
        # One task at a time per process: a small pool is enough.
        engine = create_engine(settings.database_url.get_secret_value(), timeouts, pool_size=2)
        _database = WorkerDatabase(engine, max_attempts=settings.db_max_transaction_attempts)
    return _database


def run_async(work: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on this process's long-lived loop (the engine's pool lives on it), in a
    copy of the caller's context: the running task's tenant, log context and trace."""
    global _runner
    if _runner is None:
        _runner = asyncio.Runner()
    # Without `context`, the Runner uses the copy it took at its first use: every later task's
    # coroutine would see the first task's tenant, log fields and span.
    return _runner.run(_call(work), context=contextvars.copy_context())


async def _call(work: Callable[[], Awaitable[T]]) -> T:
    return await work()
