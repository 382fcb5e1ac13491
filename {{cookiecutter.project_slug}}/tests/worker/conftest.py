"""A real Celery worker process on the real broker, with a fast retry policy."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from app.dev.services import ServiceUrls
from app.settings import Settings
from tests.processes import env_for, free_port, start_app
from tests.worker.leftovers import settle_leftover_rows
from tests.worker.output import ProcessOutput

FAST_RETRIES = {
    "TASK_MAX_RETRIES": "2",
    "TASK_RETRY_BASE_DELAY": "0.05",
    "TASK_RETRY_MAX_DELAY": "0.2",
}


@pytest.fixture(scope="module")
def worker_extra_env() -> dict[str, str]:
    """More variables for the worker; a folder or module that needs some overrides this."""
    return {}


@pytest.fixture(scope="module")
def worker_env(service_urls: ServiceUrls, worker_extra_env: dict[str, str]) -> dict[str, str]:
    return env_for(
        service_urls,
        TASK_QUEUE=f"test-{uuid.uuid4().hex[:10]}",
        LOG_FORMAT="json",
        WORKER_METRICS_PORT=str(free_port()),
        **FAST_RETRIES,
        **worker_extra_env,
    )


@pytest.fixture(scope="module")
def worker(worker_env: dict[str, str], service_urls: ServiceUrls) -> Iterator[ProcessOutput]:
    """A worker for the module, its output read as it comes: a test that waits on it in vain
    shows `worker.tail()`, and a chatty worker never blocks on a full pipe. Earlier tests'
    pending outbox rows are settled first, so none is redelivered to this worker's queue."""
    settle_leftover_rows(service_urls.owner_database_url)
    process = start_app(["worker", "--pool", "solo", "--concurrency", "1"], worker_env)
    output = ProcessOutput(process)
    yield output
    output.stop()


@pytest.fixture
def worker_settings(worker_env: dict[str, str]) -> Settings:
    """The settings the worker runs with, for publishing and operator commands."""
    names = ("ENVIRONMENT", "DATABASE_URL", "DATABASE_OWNER_URL", "REDIS_URL", "TASK_QUEUE")
    fields: dict[str, Any] = {name.lower(): worker_env[name] for name in names}
    return Settings(**fields)
