"""REL-RESILIENCE (health): readiness fails only when a critical dependency is down."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

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
    assert body["detail"] == "critical dependency down: database"
    assert body["checks"]["database"]["status"] == "down"
    assert body["checks"]["redis"]["status"] == "up"
