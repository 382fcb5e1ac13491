"""REL-QUERY: bounded pages, allow-listed parameters, tamper-evident cursors, exact cursor walks."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from app.tenants.service import NewTenant
from tests.notes.test_notes_api import auth, fresh_key


@pytest.fixture
def tenant_with_notes(client: TestClient, new_tenant: Callable[[], NewTenant]) -> NewTenant:
    tenant = new_tenant()
    for index in range(23):
        response = client.post(
            "/api/v1/notes", json={"title": f"note {index:02d}"}, headers=fresh_key(tenant)
        )
        assert response.status_code == 201
    return tenant


def _walk(client: TestClient, tenant: NewTenant, **params: str | int) -> list[str]:
    titles: list[str] = []
    cursor: str | None = None
    for _ in range(50):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/notes", params=query, headers=auth(tenant)).json()
        titles.extend(item["title"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return titles
    raise AssertionError("the cursor walk did not end")


@pytest.mark.parametrize(("sort", "reverse"), [("-created_at", True), ("created_at", False)])
def test_a_cursor_walk_returns_every_row_exactly_once(
    client: TestClient, tenant_with_notes: NewTenant, sort: str, reverse: bool
) -> None:
    """Pages of 5 over 23 notes: each note once, in the requested order."""
    titles = _walk(client, tenant_with_notes, limit=5, sort=sort)
    expected = sorted((f"note {i:02d}" for i in range(23)), reverse=reverse)
    assert titles == expected


def test_default_page_size_is_20(client: TestClient, tenant_with_notes: NewTenant) -> None:
    """Without `limit`, a page holds 20 items and points to the next one."""
    page = client.get("/api/v1/notes", headers=auth(tenant_with_notes)).json()
    assert len(page["items"]) == 20
    assert page["next_cursor"]


def test_filters_are_applied(client: TestClient, tenant_with_notes: NewTenant) -> None:
    """title_prefix matches literally (`%` and `_` are not wildcards)."""
    assert len(_walk(client, tenant_with_notes, title_prefix="note 1")) == 10
    assert _walk(client, tenant_with_notes, title_prefix="note %") == []


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": -1},
        {"limit": 101},
        {"limit": 10**12},
        {"limit": "ten"},
        {"sort": "title"},
        {"sort": "created_at; DROP TABLE notes"},
        {"unknown": "1"},
        {"tenant_id": "00000000-0000-0000-0000-000000000000"},
        {"title_prefix": "x" * 101},
        {"created_after": "not-a-date"},
        {"created_before": "0.5"},  # a Unix time to pydantic's lax mode, not a date-time
        {"created_after": "2030-01-01T00:00:00"},  # no offset: ambiguous against timestamptz
        {"created_after": "2030-01-01T00:00:00Z", "created_before": "2020-01-01T00:00:00Z"},
        {"cursor": "x" * 600},
    ],
)
def test_hostile_queries_get_422(
    client: TestClient, tenant_with_notes: NewTenant, params: dict[str, str | int]
) -> None:
    """Out-of-range, unknown or malformed parameters get a 422 problem, never a 500 or big page."""
    response = client.get("/api/v1/notes", params=params, headers=auth(tenant_with_notes))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_garbage_and_foreign_cursors_get_400(
    client: TestClient, tenant_with_notes: NewTenant, new_tenant: Callable[[], NewTenant]
) -> None:
    """A hand-made, edited, re-scoped or other tenant's cursor is rejected as invalid."""
    headers = auth(tenant_with_notes)
    cursor = client.get("/api/v1/notes", params={"limit": 2}, headers=headers).json()["next_cursor"]
    body, _, mac = cursor.partition(".")
    tampered = f"{body[:-2]}AA.{mac}"
    cases = [
        ({"cursor": "garbage"}, headers),
        ({"cursor": "%%%.###"}, headers),
        ({"cursor": tampered}, headers),
        ({"cursor": cursor, "sort": "created_at"}, headers),
        ({"cursor": cursor}, auth(new_tenant())),
    ]
    for params, who in cases:
        response = client.get("/api/v1/notes", params=params, headers=who)
        assert response.status_code == 400, (params, response.text)
        assert response.json()["title"] == "Invalid cursor"
