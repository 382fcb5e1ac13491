"""SEC-SANITIZE through the notes API: `format`, what is stored, PATCH, and the length limit."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.dev.services import ServiceUrls
from app.notes.html_policy import sanitize_html
from app.tenants.service import NewTenant

DIRTY = '<p onclick="alert(1)">hi <script>alert(2)</script><a href="javascript:x">l</a></p>'
CLEAN = '<p>hi <a rel="noopener noreferrer">l</a></p>'


@pytest.fixture
def tenant(new_tenant: Callable[[], NewTenant]) -> NewTenant:
    return new_tenant()


def _auth(tenant: NewTenant) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant.api_key}"}


def _post(client: TestClient, tenant: NewTenant, **fields: Any) -> Any:
    key = {"Idempotency-Key": f'"{uuid.uuid4()}"'}
    return client.post(
        "/api/v1/notes", json={"title": "t", **fields}, headers={**_auth(tenant), **key}
    )


def _stored(service_urls: ServiceUrls, note_id: str) -> tuple[str, str]:
    """The row as PostgreSQL holds it (body, format), read as the owner."""

    async def query() -> tuple[str, str]:
        engine = create_async_engine(service_urls.owner_database_url)
        try:
            async with engine.connect() as conn:
                sql = text("SELECT body, format FROM notes WHERE id = :id")
                row = (await conn.execute(sql, {"id": uuid.UUID(note_id)})).one()
                return str(row.body), str(row.format)
        finally:
            await engine.dispose()

    return asyncio.run(query())


def test_sanity_of_the_fixture() -> None:
    """The two constants agree with the policy, so the tests below compare real output."""
    assert sanitize_html(DIRTY) == CLEAN


def test_a_note_is_text_by_default_and_its_body_is_kept_as_sent(
    client: TestClient, tenant: NewTenant
) -> None:
    """Text is never rewritten: it is the reader's job to escape it, and it round-trips."""
    created = _post(client, tenant, body=DIRTY)
    assert created.status_code == 201
    assert (created.json()["format"], created.json()["body"]) == ("text", DIRTY)


def test_an_html_body_is_sanitized_before_it_is_stored(
    client: TestClient, tenant: NewTenant, service_urls: ServiceUrls
) -> None:
    """The row in PostgreSQL holds the sanitized body; POST and GET return it."""
    created = _post(client, tenant, body=DIRTY, format="html")
    assert created.status_code == 201
    assert (created.json()["format"], created.json()["body"]) == ("html", CLEAN)
    assert _stored(service_urls, created.json()["id"]) == (CLEAN, "html")
    fetched = client.get(f"/api/v1/notes/{created.json()['id']}", headers=_auth(tenant))
    assert fetched.json()["body"] == CLEAN


def test_patching_the_body_of_an_html_note_sanitizes_it(
    client: TestClient, tenant: NewTenant, service_urls: ServiceUrls
) -> None:
    """A new body for an HTML note goes through the policy like a created one."""
    note_id = _post(client, tenant, body="<p>x</p>", format="html").json()["id"]
    patched = client.patch(f"/api/v1/notes/{note_id}", json={"body": DIRTY}, headers=_auth(tenant))
    assert patched.status_code == 200
    assert patched.json()["body"] == CLEAN
    assert _stored(service_urls, note_id) == (CLEAN, "html")


def test_switching_a_text_note_to_html_sanitizes_the_body_it_keeps(
    client: TestClient, tenant: NewTenant, service_urls: ServiceUrls
) -> None:
    """PATCH `{"format": "html"}` alone: the stored text body is now read as HTML, so it is
    sanitized; switching back to text keeps the sanitized body."""
    note_id = _post(client, tenant, body=DIRTY).json()["id"]
    path = f"/api/v1/notes/{note_id}"
    patched = client.patch(path, json={"format": "html"}, headers=_auth(tenant))
    assert (patched.json()["format"], patched.json()["body"]) == ("html", CLEAN)
    assert _stored(service_urls, note_id) == (CLEAN, "html")
    back = client.patch(path, json={"format": "text"}, headers=_auth(tenant))
    assert (back.json()["format"], back.json()["body"]) == ("text", CLEAN)


def test_sending_html_and_its_body_in_one_patch_sanitizes_the_new_body(
    client: TestClient, tenant: NewTenant
) -> None:
    """Format and body together: the body sent is the one sanitized."""
    note_id = _post(client, tenant, body="plain").json()["id"]
    patched = client.patch(
        f"/api/v1/notes/{note_id}", json={"format": "html", "body": DIRTY}, headers=_auth(tenant)
    )
    assert (patched.json()["format"], patched.json()["body"]) == ("html", CLEAN)


def test_a_body_that_sanitizing_makes_too_long_is_422_and_not_stored(
    client: TestClient, tenant: NewTenant
) -> None:
    """20 000 `<` are within the limit as sent; escaped they are 80 000 characters, over it:
    a 422 naming the body, never a 500 from the table's check constraint."""
    response = _post(client, tenant, body="<" * 20_000, format="html")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"].startswith("body: the sanitized HTML is 80000 characters")
    assert client.get("/api/v1/notes", headers=_auth(tenant)).json()["items"] == []


def test_a_raw_body_over_the_limit_is_422_in_either_format(
    client: TestClient, tenant: NewTenant
) -> None:
    """The limit also holds for the body as sent, before any sanitizing work."""
    for note_format in ("text", "html"):
        response = _post(client, tenant, body="a" * 20_001, format=note_format)
        assert response.status_code == 422
        assert "body" in response.json()["detail"]


@pytest.mark.parametrize("value", ["markdown", "HTML", None, 1])
def test_an_unknown_format_is_422_naming_the_field(
    client: TestClient, tenant: NewTenant, value: object
) -> None:
    """Only `text` and `html`; null is not a format on POST or PATCH."""
    response = _post(client, tenant, body="x", format=value)
    assert response.status_code == 422
    assert "format" in response.json()["detail"]
    note_id = _post(client, tenant, body="x").json()["id"]
    patched = client.patch(
        f"/api/v1/notes/{note_id}", json={"format": value}, headers=_auth(tenant)
    )
    assert patched.status_code == 422
    assert "format" in patched.json()["detail"]


def test_relative_and_protocol_relative_links_lose_their_href() -> None:
    """Only absolute http, https and mailto URLs: a relative one would resolve against
    whichever page shows the note."""
    for href in ("/admin", "//evil.example/x", "#top", "ftp://example.com/f"):
        assert sanitize_html(f'<a href="{href}">x</a>') == '<a rel="noopener noreferrer">x</a>'
