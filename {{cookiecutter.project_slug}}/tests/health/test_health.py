"""REL-RESILIENCE (health): readiness fails only when a critical dependency is down."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import pytest
from fastapi.testclient import TestClient

from app.db.migrate import downgrade, upgrade
from app.dev.services import drop_database, prepare_database
from app.main import create_app
from app.settings import Settings
from tests.processes import free_port


def test_liveness_checks_nothing_but_the_process(make_settings: Callable[..., Settings]) -> None:
    """/health/live answers 200 even when every dependency is unreachable."""
    dead = f"postgresql://nobody@127.0.0.1:{free_port()}/none"
    settings = make_settings(database_url=dead, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(settings)) as client:
        response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_when_every_dependency_answers(client: TestClient) -> None:
    """Both PostgreSQL (critical) and Redis (optional) are reported up."""
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {
            "database": {"status": "up", "critical": True, "error": None},
            "redis": {"status": "up", "critical": False, "error": None},
        },
    }


def test_optional_redis_down_degrades_but_stays_ready(
    make_settings: Callable[..., Settings],
) -> None:
    """Redis down: still 200, status `degraded`, Redis named as down."""
    settings = make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(settings)) as client:
        response = client.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["redis"]["status"] == "down"


def test_critical_database_down_is_a_503_naming_it(
    make_settings: Callable[..., Settings],
) -> None:
    """Database down: 503 problem with Retry-After that names the database."""
    dead = f"postgresql://nobody@127.0.0.1:{free_port()}/none"
    settings = make_settings(database_url=dead)
    with TestClient(create_app(settings)) as client:
        response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    body = response.json()
    assert body["detail"].startswith("critical dependency down: database (")
    assert body["checks"]["database"]["status"] == "down"
    assert body["checks"]["redis"]["status"] == "up"


@pytest.fixture
def empty_database(admin_database_url: str) -> Iterator[tuple[str, str]]:
    """(owner URL, runtime URL) of a new database with the app's roles and no schema."""
    name = f"unmigrated_{uuid.uuid4().hex[:12]}"
    yield prepare_database(admin_database_url, name, recreate=True)
    drop_database(admin_database_url, name)


def _readiness_on(settings: Settings) -> tuple[int, str]:
    with TestClient(create_app(settings)) as client:
        response = client.get("/health/ready")
    return response.status_code, response.json()["detail"]


def test_an_unmigrated_database_is_not_ready_and_says_migrate(
    make_settings: Callable[..., Settings], empty_database: tuple[str, str]
) -> None:
    """PostgreSQL answers but holds no schema: 503 naming the schema and the fix."""
    status, detail = _readiness_on(make_settings(database_url=empty_database[1]))
    assert status == 503
    assert "database (schema not migrated: at no revision, expected" in detail
    assert "run the `migrate` command" in detail


def test_a_database_behind_the_code_is_not_ready(
    make_settings: Callable[..., Settings], empty_database: tuple[str, str]
) -> None:
    """One migration short of head: 503 naming both revisions; after `migrate`, 200."""
    owner_url, runtime_url = empty_database
    upgrade(owner_url, runtime_url)
    downgrade(owner_url, runtime_url, "-1")
    settings = make_settings(database_url=runtime_url)
    status, detail = _readiness_on(settings)
    assert status == 503
    assert "schema not migrated: at " in detail
    assert "at no revision" not in detail
    upgrade(owner_url, runtime_url)
    with TestClient(create_app(settings)) as client:
        assert client.get("/health/ready").status_code == 200


def test_a_database_ahead_of_the_code_stays_ready(
    make_settings: Callable[..., Settings], empty_database: tuple[str, str]
) -> None:
    """A newer release migrated first (expand step): the old pods keep serving during rollout."""
    owner_url, runtime_url = empty_database
    upgrade(owner_url, runtime_url)
    asyncio.run(_set_revision(owner_url, "from_a_newer_release"))
    with TestClient(create_app(make_settings(database_url=runtime_url))) as client:
        assert client.get("/health/ready").status_code == 200
    # Rolling back runs the older release's `migrate` too: nothing to do, and no failure.
    upgrade(owner_url, runtime_url)
    assert asyncio.run(_revision(owner_url)) == "from_a_newer_release"


async def _revision(owner_url: str) -> str:
    connection = await asyncpg.connect(owner_url.replace("+asyncpg", ""))
    try:
        return str(await connection.fetchval("SELECT version_num FROM alembic_version"))
    finally:
        await connection.close()


async def _set_revision(owner_url: str, revision: str) -> None:
    connection = await asyncpg.connect(owner_url.replace("+asyncpg", ""))
    try:
        await connection.execute("UPDATE alembic_version SET version_num = $1", revision)
    finally:
        await connection.close()
