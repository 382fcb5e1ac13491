"""SEC-TENANT through the API, API-CONTRACTS and API-CACHING for the notes feature."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.tenants.service import NewTenant

Auth = dict[str, str]


def auth(tenant: NewTenant) -> Auth:
    return {"Authorization": f"Bearer {tenant.api_key}"}


def fresh_key(tenant: NewTenant) -> Auth:
    """Auth plus a new Idempotency-Key, as a well-behaved client sends on every POST."""
    return {**auth(tenant), "Idempotency-Key": f'"{uuid.uuid4()}"'}


@pytest.fixture
def alice(new_tenant: Callable[[], NewTenant]) -> NewTenant:
    return new_tenant()


@pytest.fixture
def bob(new_tenant: Callable[[], NewTenant]) -> NewTenant:
    return new_tenant()


def _create(
    client: TestClient, tenant: NewTenant, title: str = "hello", body: str = ""
) -> dict[str, Any]:
    response = client.post(
        "/api/v1/notes", json={"title": title, "body": body}, headers=fresh_key(tenant)
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_create_read_update_delete(client: TestClient, alice: NewTenant) -> None:
    """The full lifecycle of a note, with Location, ETag and version moving on each write."""
    response = client.post(
        "/api/v1/notes", json={"title": "t1", "body": "b1"}, headers=fresh_key(alice)
    )
    assert response.status_code == 201
    note = response.json()
    assert response.headers["location"].endswith(f"/api/v1/notes/{note['id']}")
    assert response.headers["etag"] == '"v1"'

    fetched = client.get(f"/api/v1/notes/{note['id']}", headers=auth(alice))
    assert fetched.json() == note
    assert fetched.headers["cache-control"] == "private, no-cache"

    patched = client.patch(f"/api/v1/notes/{note['id']}", json={"title": "t2"}, headers=auth(alice))
    assert (patched.json()["title"], patched.json()["body"], patched.json()["version"]) == (
        "t2",
        "b1",
        2,
    )
    assert client.delete(f"/api/v1/notes/{note['id']}", headers=auth(alice)).status_code == 204
    assert client.get(f"/api/v1/notes/{note['id']}", headers=auth(alice)).status_code == 404


def test_another_tenants_note_is_404_everywhere(
    client: TestClient, alice: NewTenant, bob: NewTenant
) -> None:
    """Bob cannot read, change, delete or list Alice's note, and cannot tell it exists."""
    note = _create(client, alice, "alice's secret")
    path = f"/api/v1/notes/{note['id']}"
    assert client.get(path, headers=auth(bob)).status_code == 404
    assert client.patch(path, json={"title": "x"}, headers=auth(bob)).status_code == 404
    assert client.delete(path, headers=auth(bob)).status_code == 404
    assert client.get("/api/v1/notes", headers=auth(bob)).json()["items"] == []
    assert client.get(path, headers=auth(alice)).json()["title"] == "alice's secret"


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Basic dXNlcjpwYXNz", "Bearer not-a-key", f"Bearer ak_{'0' * 32}_{'A' * 43}"],
)
def test_missing_malformed_or_unknown_keys_get_401(client: TestClient, header: str | None) -> None:
    """Every authentication failure is a 401 problem with a Bearer challenge."""
    headers = {"Authorization": header} if header else {}
    response = client.get("/api/v1/notes", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_etag_revalidation_and_if_match(client: TestClient, alice: NewTenant) -> None:
    """If-None-Match gives 304; a stale If-Match gives 412 and changes nothing."""
    note = _create(client, alice)
    path = f"/api/v1/notes/{note['id']}"
    not_modified = client.get(path, headers={**auth(alice), "If-None-Match": '"v1"'})
    assert not_modified.status_code == 304
    assert not_modified.headers["etag"] == '"v1"'
    client.patch(path, json={"body": "new"}, headers={**auth(alice), "If-Match": '"v1"'})
    stale = client.patch(path, json={"body": "lost"}, headers={**auth(alice), "If-Match": '"v1"'})
    assert stale.status_code == 412
    assert stale.json()["current_etag"] == '"v2"'
    assert client.get(path, headers=auth(alice)).json()["body"] == "new"
    assert client.delete(path, headers={**auth(alice), "If-Match": '"v1"'}).status_code == 412


@pytest.mark.parametrize(
    ("if_match", "status"),
    [('W/"v1"', 412), ('"v9", W/"v1"', 412), ('"v9", "v1"', 200), ("*", 200)],
)
def test_if_match_compares_strongly_and_takes_a_list_or_any(
    client: TestClient, alice: NewTenant, if_match: str, status: int
) -> None:
    """If-Match names the current version only by a strong tag (RFC 9110 section 13.1.1): a weak
    one is stale, 412, and nothing changes; a list naming it, or `*`, goes ahead."""
    path = f"/api/v1/notes/{_create(client, alice)['id']}"
    headers = {**auth(alice), "If-Match": if_match}
    assert client.patch(path, json={"body": "changed"}, headers=headers).status_code == status
    body = client.get(path, headers=auth(alice)).json()["body"]
    assert body == ("changed" if status == 200 else "")


@pytest.mark.parametrize(
    "payload",
    [{}, {"title": ""}, {"title": "x" * 201}, {"title": None}, {"title": "ok", "owner": "me"}],
)
def test_bad_updates_are_422(client: TestClient, alice: NewTenant, payload: dict[str, Any]) -> None:
    """Empty, too long, null or unknown fields are rejected with a 422 problem."""
    note = _create(client, alice)
    response = client.patch(f"/api/v1/notes/{note['id']}", json=payload, headers=auth(alice))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_a_malformed_if_match_is_a_422_naming_the_header(
    client: TestClient, alice: NewTenant
) -> None:
    """An If-Match outside the entity-tag syntax the document declares is refused as invalid,
    not treated as a stale version (412); the note is unchanged."""
    path = f"/api/v1/notes/{_create(client, alice)['id']}"
    response = client.patch(path, json={"body": "x"}, headers={**auth(alice), "If-Match": "v1"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == "header.if-match"
    assert client.get(path, headers=auth(alice)).json()["body"] == ""


@pytest.mark.parametrize("field", ["title", "body"])
def test_a_nul_character_is_a_422_naming_the_field(
    client: TestClient, alice: NewTenant, field: str
) -> None:
    """PostgreSQL text cannot hold U+0000: the request is refused naming the field, as the
    document's pattern says, on create and on update."""
    created = client.post(
        "/api/v1/notes", json={"title": "t", field: "a\u0000b"}, headers=fresh_key(alice)
    )
    assert created.status_code == 422
    assert created.json()["errors"][0]["loc"] == f"body.{field}"
    path = f"/api/v1/notes/{_create(client, alice)['id']}"
    updated = client.patch(path, json={field: "a\u0000b"}, headers=auth(alice))
    assert updated.json()["errors"][0]["loc"] == f"body.{field}"


def test_ids_must_be_uuids(client: TestClient, alice: NewTenant) -> None:
    """A non-UUID id is a 422 naming the path parameter, not a database error."""
    response = client.get("/api/v1/notes/1%20OR%201=1", headers=auth(alice))
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == "path.note_id"


def test_random_unknown_id_is_404(client: TestClient, alice: NewTenant) -> None:
    """A well-formed id that exists nowhere is a 404 problem."""
    response = client.get(f"/api/v1/notes/{uuid.uuid4()}", headers=auth(alice))
    assert response.status_code == 404
