"""SEC-WEBHOOKS endpoints API: the secret is shown once; tenants are isolated, in the API and in
the database as the runtime role."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from app.db.engine import create_engine
from app.db.session import Database
from app.db.tenancy import TENANT_SETTING
from app.dev.services import ServiceUrls
from app.settings import Settings
from app.tenants.service import NewTenant
from app.webhooks import repository
from app.webhooks.sealing import UnsealError, sealing_key, unseal
from tests.notes.test_notes_api import auth, fresh_key

PATH = "/api/v1/webhook-endpoints"
SET_TENANT = text("SELECT set_config(:name, :tenant, true)")
INSERT = text("INSERT INTO webhook_endpoints (tenant_id, url, secret) VALUES (:t, 'u', 's')")
# A public address (example.com's) written as a literal: registering it needs no DNS lookup, and
# nothing is ever sent to it (these tests run no worker).
PUBLIC = "https://93.184.215.14"


def _register(client: TestClient, tenant: NewTenant, url: str) -> dict[str, object]:
    response = client.post(PATH, json={"url": url}, headers=fresh_key(tenant))
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    return dict(response.json())


async def _read_as_tenant(service_urls: ServiceUrls, tenant: NewTenant, query: str) -> object:
    """One value read by the runtime role under `tenant`, as the app reads it."""
    engine = create_async_engine(service_urls.runtime_database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                SET_TENANT, {"name": TENANT_SETTING, "tenant": str(tenant.tenant_id)}
            )
            return await conn.scalar(text(query))
    finally:
        await engine.dispose()


def test_the_secret_is_shown_once_and_never_listed(
    client: TestClient, new_tenant: Callable[[], NewTenant]
) -> None:
    tenant = new_tenant()
    created = _register(client, tenant, f"{PUBLIC}/in")
    secret = str(created["secret"])
    assert secret.startswith("whsec_")
    listed = client.get(PATH, headers=auth(tenant))
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["items"]] == [created["id"]]
    assert "secret" not in listed.json()["items"][0]
    assert secret not in listed.text
    second = _register(client, tenant, f"{PUBLIC}/in")
    assert second["secret"] != secret  # one secret per destination


async def test_the_secret_is_stored_sealed_and_bound_to_its_tenant(
    client: TestClient,
    new_tenant: Callable[[], NewTenant],
    service_urls: ServiceUrls,
    settings: Settings,
) -> None:
    """The column holds AES-GCM ciphertext under a key from SECRET_KEY, not the secret; it opens
    only for its own tenant."""
    tenant = new_tenant()
    created = _register(client, tenant, f"{PUBLIC}/sealed")
    query = "SELECT secret FROM webhook_endpoints"
    stored = str(await _read_as_tenant(service_urls, tenant, query))
    assert stored.startswith("v1.")
    assert str(created["secret"]) not in stored
    key = sealing_key(settings.secret_key.get_secret_value())
    assert unseal(key, tenant.tenant_id, stored) == created["secret"]
    with pytest.raises(UnsealError):
        unseal(key, new_tenant().tenant_id, stored)
    with pytest.raises(UnsealError):
        unseal(sealing_key("another key"), tenant.tenant_id, stored)


async def test_the_idempotency_record_keeps_no_secret(
    client: TestClient, new_tenant: Callable[[], NewTenant], service_urls: ServiceUrls
) -> None:
    """The create's answer is kept for its retries, but not its secret: a database dump within
    the retention window yields no usable secret either. A retry still gets the answer whole."""
    tenant = new_tenant()
    headers = fresh_key(tenant)
    first = client.post(PATH, json={"url": f"{PUBLIC}/kept"}, headers=headers)
    assert first.status_code == 201, first.text
    kept = await _read_as_tenant(service_urls, tenant, "SELECT body FROM idempotency_keys")
    assert isinstance(kept, bytes)
    assert first.json()["id"] in kept.decode()  # the record is this create's
    assert first.json()["secret"].encode() not in kept
    assert first.json()["secret"].removeprefix("whsec_").encode() not in kept
    again = client.post(PATH, json={"url": f"{PUBLIC}/kept"}, headers=headers)
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.content == first.content


def test_a_retried_create_replays_the_same_endpoint(
    client: TestClient, new_tenant: Callable[[], NewTenant]
) -> None:
    """Idempotent POST: a client that lost the answer gets the same endpoint and secret back."""
    tenant = new_tenant()
    headers = fresh_key(tenant)
    first = client.post(PATH, json={"url": f"{PUBLIC}/a"}, headers=headers)
    again = client.post(PATH, json={"url": f"{PUBLIC}/a"}, headers=headers)
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json()
    assert len(client.get(PATH, headers=auth(tenant)).json()["items"]) == 1


def test_delete_and_tenant_isolation_through_the_api(
    client: TestClient, new_tenant: Callable[[], NewTenant]
) -> None:
    alice, bob = new_tenant(), new_tenant()
    created = _register(client, alice, f"{PUBLIC}/alice")
    path = f"{PATH}/{created['id']}"
    assert client.get(PATH, headers=auth(bob)).json()["items"] == []
    assert client.delete(path, headers=auth(bob)).status_code == 404
    assert client.delete(path, headers=auth(alice)).status_code == 204
    assert client.delete(path, headers=auth(alice)).status_code == 404
    assert client.get(PATH, headers=auth(alice)).json()["items"] == []


def test_bad_urls_are_422(client: TestClient, new_tenant: Callable[[], NewTenant]) -> None:
    tenant = new_tenant()
    for url in ("ftp://x.example/", "not a url", "https://x.example/" + "a" * 3000):
        response = client.post(PATH, json={"url": url}, headers=fresh_key(tenant))
        assert response.status_code == 422, url
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_runtime_role_cannot_see_another_tenants_endpoints(
    service_urls: ServiceUrls, new_tenant: Callable[[], NewTenant]
) -> None:
    """Raw SQL as the runtime role: RLS hides other tenants' rows and secrets, and refuses to
    write a row for another tenant."""
    alice, bob = new_tenant(), new_tenant()
    engine = create_async_engine(service_urls.runtime_database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(SET_TENANT, {"name": TENANT_SETTING, "tenant": str(alice.tenant_id)})
            await conn.execute(INSERT, {"t": alice.tenant_id})
        async with engine.connect() as conn:
            await conn.execute(SET_TENANT, {"name": TENANT_SETTING, "tenant": str(bob.tenant_id)})
            seen = await conn.scalar(text("SELECT count(*) FROM webhook_endpoints"))
            assert seen == 0
            with pytest.raises(DBAPIError, match="row-level security"):
                await conn.execute(INSERT, {"t": alice.tenant_id})
    finally:
        await engine.dispose()


def test_a_replayed_create_never_answers_a_deleted_endpoint(
    client: TestClient, new_tenant: Callable[[], NewTenant]
) -> None:
    """The retry of a create whose endpoint was deleted since is a 409, not the old answer (an
    id that no longer exists, with its secret): the endpoint is not created again either."""
    tenant = new_tenant()
    headers = fresh_key(tenant)
    created = client.post(PATH, json={"url": f"{PUBLIC}/once"}, headers=headers)
    assert created.status_code == 201
    assert client.delete(f"{PATH}/{created.json()['id']}", headers=auth(tenant)).status_code == 204
    retried = client.post(PATH, json={"url": f"{PUBLIC}/once"}, headers=headers)
    assert retried.status_code == 409
    assert created.json()["secret"] not in retried.text
    assert client.get(PATH, headers=auth(tenant)).json()["items"] == []


async def _disable_as_the_worker_does(
    service_urls: ServiceUrls, tenant: NewTenant, endpoint_id: uuid.UUID
) -> None:
    engine = create_engine(service_urls.runtime_database_url)
    try:
        await Database(engine).run(
            lambda session: repository.disable(session, tenant.tenant_id, endpoint_id),
            tenant.tenant_id,
        )
    finally:
        await engine.dispose()


async def test_a_new_note_is_queued_for_the_active_endpoints_only(
    client: TestClient, new_tenant: Callable[[], NewTenant], service_urls: ServiceUrls
) -> None:
    """An endpoint disabled (as the worker disables one that keeps failing) gets no more events:
    a new note queues one delivery for each active endpoint of its tenant, none for it."""
    tenant = new_tenant()
    active = _register(client, tenant, f"{PUBLIC}/active")
    disabled = _register(client, tenant, f"{PUBLIC}/disabled")
    await _disable_as_the_worker_does(service_urls, tenant, uuid.UUID(str(disabled["id"])))
    note = client.post("/api/v1/notes", json={"title": "t", "body": "b"}, headers=fresh_key(tenant))
    assert note.status_code == 201, note.text
    engine = create_async_engine(service_urls.owner_database_url)  # the runtime role can't read it
    try:
        async with engine.connect() as conn:
            queued = (
                await conn.scalars(
                    text(
                        "SELECT args->>0 FROM outbox WHERE task_name = 'webhooks.deliver' "
                        "AND tenant_id = :tenant"
                    ),
                    {"tenant": tenant.tenant_id},
                )
            ).all()
    finally:
        await engine.dispose()
    assert queued == [active["id"]]
