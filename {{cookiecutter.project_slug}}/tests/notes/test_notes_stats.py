"""REL-CACHE in use: tenant note counts cached in Redis, invalidated by the write paths."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from app.tenants.service import NewTenant
from tests.notes.test_notes_api import auth, fresh_key
from tests.processes import free_port


def _cache_hits(client: TestClient) -> float:
    text = client.get("/metrics").text
    pattern = r'^cache_requests_total\{namespace="notes-stats",outcome="hit"\} (\S+)$'
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def _count(client: TestClient, tenant: NewTenant) -> int:
    response = client.get("/api/v1/stats/notes", headers=auth(tenant))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    notes: int = response.json()["notes"]
    return notes


def test_stats_are_cached_and_follow_creates_and_deletes(
    client: TestClient, new_tenant: Callable[[], NewTenant]
) -> None:
    tenant = new_tenant()
    assert _count(client, tenant) == 0
    hits = _cache_hits(client)
    assert _count(client, tenant) == 0
    assert _cache_hits(client) == hits + 1  # the second read came from Redis
    created = [
        client.post("/api/v1/notes", json={"title": f"n{i}"}, headers=fresh_key(tenant))
        for i in range(2)
    ]
    assert _count(client, tenant) == 2  # creating invalidated the cached 0
    note = created[0].json()
    deleted = client.delete(
        f"/api/v1/notes/{note['id']}",
        headers={**auth(tenant), "If-Match": created[0].headers["etag"]},
    )
    assert deleted.status_code == 204
    assert _count(client, tenant) == 1  # and so did deleting


def test_one_tenants_cached_stats_never_reach_another(
    client: TestClient, new_tenant: Callable[[], NewTenant]
) -> None:
    alice, bob = new_tenant(), new_tenant()
    client.post("/api/v1/notes", json={"title": "a"}, headers=fresh_key(alice))
    assert _count(client, alice) == 1
    assert _count(client, bob) == 0


def test_stats_are_served_with_redis_down(
    make_settings: Callable[..., Settings], new_tenant: Callable[[], NewTenant]
) -> None:
    tenant = new_tenant()
    settings = make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(settings)) as client:
        client.post("/api/v1/notes", json={"title": "a"}, headers=fresh_key(tenant))
        assert _count(client, tenant) == 1
        assert _count(client, tenant) == 1
