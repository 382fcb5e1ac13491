"""A task for the outage tests, loaded into the worker with `worker --include`.

Its first attempts lose their database connection the way a failover does (the server ends the
backend mid-transaction) while PostgreSQL stays up, so a dead letter written then would succeed:
the test sees whether an outage of the service's own database spends the task's retry budget.
"""

from __future__ import annotations

from redis import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.settings import get_settings
from app.worker.runtime import run_async, worker_database
from app.worker.tasks import reliable_task

OUTAGE_TASK = "tests.database_outage_then_effect"


def _redis() -> Redis:
    url = get_settings().redis_url
    assert url is not None
    client: Redis = Redis.from_url(url.get_secret_value())
    return client


async def _lose_the_connection(session: AsyncSession) -> None:
    await session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))


@reliable_task(OUTAGE_TASK)
def database_outage_then_effect(key: str, outages: int) -> None:
    """The first `outages` attempts meet a lost database connection; the next applies its effect."""
    redis = _redis()
    if redis.incr(f"{key}:attempts") <= outages:
        run_async(lambda: worker_database().run(_lose_the_connection, tenant_id=None))
    redis.incr(f"{key}:effect")
