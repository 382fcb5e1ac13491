"""Fixtures shared by the whole suite: real services, settings, the app and a client for it."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.dev.services import ServiceUrls
from app.main import create_app
from app.settings import Settings
from app.tenants.admin import create_tenant_now
from app.tenants.service import NewTenant
from tests.services import TestServices, drop_queue, provision_services
from tests.uploads.clamd import report_scanner_tests_not_run

SUPPORT_URL = "https://support.test.example/"
TEST_QUEUE = f"test-tasks-{uuid.uuid4().hex[:10]}"
# An app built with production settings would otherwise install the OTLP exporter for the whole
# process (the tracer provider is global and set once), shipping spans to a collector that is not
# there and hiding the in-memory exporter of tests/observability/test_tracing.py. Tracing tests
# opt in.
os.environ.setdefault("OTEL_TRACES_EXPORTER", "none")


@pytest.fixture(scope="session")
def test_services() -> Iterator[TestServices]:
    with provision_services() as services:
        yield services
        drop_queue(services.urls.redis_url, TEST_QUEUE)


@pytest.fixture(scope="session")
def service_urls(test_services: TestServices) -> ServiceUrls:
    return test_services.urls


@pytest.fixture(scope="session")
def admin_database_url(test_services: TestServices) -> str:
    """A superuser URL of the test server, for tests that create their own databases."""
    return test_services.admin_database_url


@pytest.fixture
def new_tenant(service_urls: ServiceUrls) -> Callable[[], NewTenant]:
    """Create a tenant (as the owner, like `create-tenant`) and return its id and API key."""

    def create() -> NewTenant:
        name = f"tenant-{uuid.uuid4().hex[:8]}"
        # create_tenant_now runs its own event loop: give it a thread, async tests call this too.
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(create_tenant_now, service_urls.owner_database_url, name).result()

    return create


@pytest.fixture
def make_settings(service_urls: ServiceUrls) -> Callable[..., Settings]:
    """Build test settings on the real services; keyword arguments override fields."""

    def build(**overrides: Any) -> Settings:
        fields: dict[str, Any] = {
            "environment": "test",
            "database_url": SecretStr(service_urls.runtime_database_url),
            "database_owner_url": SecretStr(service_urls.owner_database_url),
            "redis_url": SecretStr(service_urls.redis_url),
            "support_url": SUPPORT_URL,
            # A namespace per test: rate-limit counters never leak between tests (or suites).
            "redis_key_prefix": f"test-{uuid.uuid4().hex[:12]}:",
            # Tasks published by API tests go to a queue of this suite's own (dropped at the end).
            "task_queue": TEST_QUEUE,
            **overrides,
        }
        return Settings(**fields)

    return build


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    # raise_server_exceptions=False: the client sees what a real client would, a 500 problem.
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def log_lines(capsys: pytest.CaptureFixture[str]) -> Callable[[], list[dict[str, Any]]]:
    """Read back what the service logged so far, one parsed JSON object per line."""

    def read() -> list[dict[str, Any]]:
        out = capsys.readouterr().out
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    return read


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """At the end of the run, loudly: the scanner tests that did not run for want of clamd.
    Here and not in tests/uploads/: under xdist only this conftest is loaded where reports end."""
    report_scanner_tests_not_run(terminalreporter)
