"""`Location` of a created note never comes from the request's Host header."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from app.tenants.service import NewTenant

HOSTILE = "evil.example"


def _create(client: TestClient, tenant: NewTenant) -> str:
    headers = {
        "Authorization": f"Bearer {tenant.api_key}",
        "Idempotency-Key": f'"{uuid.uuid4()}"',
        "Host": HOSTILE,
        "X-Forwarded-Host": HOSTILE,
    }
    response = client.post("/api/v1/notes", json={"title": "t"}, headers=headers)
    assert response.status_code == 201, response.text
    location = response.headers["location"]
    assert location.endswith(f"/api/v1/notes/{response.json()['id']}")
    return location


def test_location_is_relative_without_a_public_base_url(
    client: TestClient, new_tenant: Callable[[], NewTenant]
) -> None:
    """Without PUBLIC_BASE_URL, Location is a relative reference: a hostile Host is not echoed."""
    location = _create(client, new_tenant())
    assert location.startswith("/api/v1/notes/")
    assert HOSTILE not in location


def test_location_uses_the_configured_public_base_url(
    make_settings: Callable[..., Settings], new_tenant: Callable[[], NewTenant]
) -> None:
    """With PUBLIC_BASE_URL set, Location is absolute on that base, whatever Host said."""
    settings = make_settings(public_base_url="https://api.acme.test/base/")
    with TestClient(create_app(settings)) as client:
        location = _create(client, new_tenant())
    assert location.startswith("https://api.acme.test/base/api/v1/notes/")
