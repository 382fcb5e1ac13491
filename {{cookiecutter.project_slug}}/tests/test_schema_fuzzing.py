"""API-CONTRACTS: fuzzing the running service from its OpenAPI document: no 5xx, no drift."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app.devservices import ServiceUrls
from app.main import create_app
from app.settings import Settings
from app.tenants.admin import create_tenant_now
from tests.processes import PROJECT_ROOT, env_for, free_port, wait_for_port


@dataclass(frozen=True)
class RunningService:
    base_url: str
    api_key: str


@pytest.fixture(scope="module")
def running_service(
    service_urls: ServiceUrls, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    port = free_port()
    env = env_for(
        service_urls,
        RATE_LIMIT_PER_IP="100000/second",
        RATE_LIMIT_PER_PRINCIPAL="100000/second",
    )
    log = tmp_path_factory.mktemp("fuzz") / "service.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(port)],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert wait_for_port(port, process), log.read_text()
            tenant = create_tenant_now(service_urls.owner_database_url, "fuzz")
            yield RunningService(f"http://127.0.0.1:{port}", tenant.api_key)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)


# The document the running service serves: the app built with test settings answers it without
# touching a database, so the cases are known when pytest collects them.
schema = schemathesis.openapi.from_dict(create_app(Settings(environment="test")).openapi())


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_the_api_keeps_its_contract(
    case: schemathesis.Case[Any], running_service: RunningService
) -> None:
    """Generated valid and invalid requests never get a 5xx, and every answer matches the spec."""
    case.call_and_validate(
        base_url=running_service.base_url,
        headers={"Authorization": f"Bearer {running_service.api_key}"},
        # Rules that JSON Schema cannot state are enforced on purpose, so a schema-valid request
        # may still get a 4xx: created_after < created_before, signed cursors, If-Match values.
        excluded_checks=[positive_data_acceptance],
    )


def test_the_fuzzed_document_is_the_one_served(running_service: RunningService) -> None:
    """The cases come from the document the service publishes, problem responses included."""
    served = httpx2.get(f"{running_service.base_url}/openapi.json", timeout=10).json()
    assert served == schema.raw_schema
    create = served["paths"]["/api/v1/notes"]["post"]["responses"]
    assert set(create["422"]["content"]) == {"application/problem+json", "text/html"}
    assert {"4XX", "5XX"} <= set(create)
