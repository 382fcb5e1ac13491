"""The beat-scheduled purge. The worker needs DATABASE_OWNER_URL for it (see docs/retention.md)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import create_async_engine

from app.db.errors import connection_problem
from app.lifecycle.retention import purge_expired, retention_policies
from app.observability.logging import get_logger
from app.settings import Settings, get_settings
from app.worker.policy import DependencyOutageError
from app.worker.runtime import run_async
from app.worker.tasks import reliable_task

log = get_logger("app.lifecycle")


async def purge_now(settings: Settings) -> dict[str, int] | None:
    """Run every retention rule once, as the owner role."""
    if settings.database_owner_url is None:
        raise ValueError("DATABASE_OWNER_URL is required to purge")
    engine = create_async_engine(
        settings.database_owner_url.get_secret_value(), hide_parameters=True
    )
    try:
        deleted = await purge_expired(engine, retention_policies(settings))
    finally:
        await engine.dispose()
    log.info("purge_finished" if deleted is not None else "purge_skipped", deleted=deleted)
    return deleted


async def purge_in_worker(settings: Settings) -> dict[str, int] | None:
    """`purge_now` for the task. Its engine is its own, not the worker's `Database`: an outage is
    said the same way, so the task waits in the broker instead of spending its retries on it."""
    try:
        return await purge_now(settings)
    except Exception as error:
        problem = connection_problem(error)
        if problem is None:
            raise
        raise DependencyOutageError(problem) from error


@reliable_task("app.lifecycle.purge")
def purge() -> dict[str, int] | None:
    settings = get_settings()
    return run_async(lambda: purge_in_worker(settings))
