"""Fixtures of the fault suite: servers of its own that a test may restart, freeze and kill.

- `fault_postgres` / `fault_redis`: a `PrivatePostgres` / `PrivateRedis` (tests/faults/servers.py)
  started once per test session (per xdist worker), guaranteed running and thawed when each test
  starts and again when it ends, so a test may leave it stopped, frozen or killed.
- `fault_urls`: `ServiceUrls` of a database on `fault_postgres`, created with the app's roles and
  migrated to head once per session, and of `fault_redis`.
- `fault_tenant`: a tenant with an API key in that database.

Mark every test module here with `pytestmark = pytest.mark.faults`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from app.dev.services import ServiceUrls
from app.tenants.admin import create_tenant_now
from app.tenants.service import NewTenant
from tests.faults.servers import (
    PrivatePostgres,
    PrivateRedis,
    migrated_database,
    private_postgres,
    private_redis,
)


@pytest.fixture(scope="session")
def _session_postgres() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def _session_redis() -> Iterator[PrivateRedis]:
    with private_redis() as server:
        yield server


@pytest.fixture(scope="session")
def fault_urls(_session_postgres: PrivatePostgres, _session_redis: PrivateRedis) -> ServiceUrls:
    owner_url, runtime_url = migrated_database(_session_postgres)
    return ServiceUrls(owner_url, runtime_url, _session_redis.url)


@pytest.fixture
def fault_postgres(_session_postgres: PrivatePostgres) -> Iterator[PrivatePostgres]:
    _session_postgres.ensure_running()
    yield _session_postgres
    _session_postgres.ensure_running()


@pytest.fixture
def fault_redis(_session_redis: PrivateRedis) -> Iterator[PrivateRedis]:
    _session_redis.ensure_running()
    yield _session_redis
    _session_redis.ensure_running()


@pytest.fixture
def fault_tenant(fault_urls: ServiceUrls, fault_postgres: PrivatePostgres) -> NewTenant:
    return create_tenant_now(fault_urls.owner_database_url, f"fault-{uuid.uuid4().hex[:8]}")
