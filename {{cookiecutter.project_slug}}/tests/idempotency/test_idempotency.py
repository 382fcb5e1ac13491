"""DATA-IDEMPOTENCY: keys required on unsafe POSTs, replays, conflicts, concurrency, retention."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.db.tenancy import TENANT_SETTING
from app.dev.services import ServiceUrls
from app.lifecycle.retention import purge_expired, retention_policies
from app.settings import Settings
from app.tenants.service import NewTenant
from tests.notes.test_notes_api import auth

NOTE = {"title": "pay invoice 42"}


def _post(
    client: TestClient, tenant: NewTenant, key: str, body: dict[str, str] = NOTE
) -> httpx2.Response:
    return client.post("/api/v1/notes", json=body, headers={**auth(tenant), "Idempotency-Key": key})


def _count(client: TestClient, tenant: NewTenant) -> int:
    page = client.get("/api/v1/notes", params={"limit": 100}, headers=auth(tenant)).json()
    return len(page["items"])


@pytest.fixture
def alice(new_tenant: Callable[[], NewTenant]) -> NewTenant:
    return new_tenant()


def test_missing_key_is_a_400_problem(client: TestClient, alice: NewTenant) -> None:
    """An unsafe POST without Idempotency-Key is refused before anything is written."""
    response = client.post("/api/v1/notes", json=NOTE, headers=auth(alice))
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "Idempotency-Key" in response.json()["detail"]
    assert _count(client, alice) == 0


@pytest.mark.parametrize("key", ['""', "has space", "k" * 256, '"unterminated', "caf\u00e9"])
def test_malformed_keys_are_400(client: TestClient, alice: NewTenant, key: str) -> None:
    """Empty, too long, spaced or non-ASCII keys are rejected with a 400 problem."""
    headers = [(name.encode(), value.encode()) for name, value in auth(alice).items()]
    headers.append((b"idempotency-key", key.encode("utf-8")))
    response = client.post("/api/v1/notes", json=NOTE, headers=headers)
    assert response.status_code == 400


def test_same_key_same_request_replays_the_stored_response(
    client: TestClient, alice: NewTenant
) -> None:
    """The retry gets the same status, body and Location, marked replayed; one note exists."""
    key = f'"{uuid.uuid4()}"'
    first = _post(client, alice, key)
    second = _post(client, alice, key)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert _count(client, alice) == 1


def test_same_key_different_request_is_422(client: TestClient, alice: NewTenant) -> None:
    """Reusing a key for another payload is refused and creates nothing."""
    key = "order-7"
    assert _post(client, alice, key).status_code == 201
    response = _post(client, alice, key, {"title": "something else"})
    assert response.status_code == 422
    assert response.json()["title"].startswith("Idempotency-Key reused")
    assert _count(client, alice) == 1


def test_a_replay_answers_a_note_that_exists_or_409_once_it_is_deleted(
    client: TestClient, alice: NewTenant
) -> None:
    """A retry never hands out a deleted note: before the delete it answers the same note, which
    is there to read; after it, a 409 naming why, and nothing is created again."""
    key = f'"{uuid.uuid4()}"'
    created = _post(client, alice, key)
    replayed = _post(client, alice, key)
    assert replayed.json()["id"] == created.json()["id"]
    assert client.get(created.headers["location"], headers=auth(alice)).status_code == 200
    assert client.delete(created.headers["location"], headers=auth(alice)).status_code == 204
    after_delete = _post(client, alice, key)
    assert after_delete.status_code == 409
    assert after_delete.json()["type"].endswith("/problems/idempotency-key-resource-deleted")
    assert "retry-after" not in after_delete.headers  # not "in flight": retrying will not help
    assert _count(client, alice) == 0


def test_keys_are_scoped_to_the_tenant(
    client: TestClient, alice: NewTenant, new_tenant: Callable[[], NewTenant]
) -> None:
    """Two tenants using the same key each get their own note, never the other's response."""
    bob = new_tenant()
    first, second = _post(client, alice, "shared"), _post(client, bob, "shared")
    assert first.json()["id"] != second.json()["id"]
    assert "idempotent-replayed" not in second.headers


def test_concurrent_duplicates_make_exactly_one_note(client: TestClient, alice: NewTenant) -> None:
    """Twelve simultaneous requests with one key: one note; the rest replay it or get 409."""
    key = f'"{uuid.uuid4()}"'
    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(lambda _: _post(client, alice, key), range(12)))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409}
    originals = [
        r for r in responses if r.status_code == 201 and "idempotent-replayed" not in r.headers
    ]
    assert len(originals) == 1
    assert _count(client, alice) == 1


_REFUSE_DOOMED_RECORDS = (
    """CREATE FUNCTION test_refuse_doomed_record() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN RAISE EXCEPTION 'idempotency record refused (test)'; END $$""",
    """CREATE TRIGGER test_refuse_doomed_record BEFORE INSERT ON idempotency_keys
    FOR EACH ROW WHEN (NEW.key LIKE 'doomed-%') EXECUTE FUNCTION test_refuse_doomed_record()""",
)


async def test_a_failed_record_write_leaves_no_business_row(
    client: TestClient, alice: NewTenant, service_urls: ServiceUrls
) -> None:
    """When the record insert fails after the note's insert, the note is rolled back with it."""
    key = f"doomed-{uuid.uuid4()}"
    owner = create_async_engine(service_urls.owner_database_url)
    try:
        async with owner.begin() as conn:
            for statement in _REFUSE_DOOMED_RECORDS:
                await conn.execute(text(statement))
        failed = _post(client, alice, key)
    finally:
        async with owner.begin() as conn:
            await conn.execute(text("DROP FUNCTION test_refuse_doomed_record() CASCADE"))
        await owner.dispose()
    assert failed.status_code == 500
    assert _count(client, alice) == 0
    retried = _post(client, alice, key)  # nothing of the failed attempt is left: it runs anew
    assert (retried.status_code, "idempotent-replayed" in retried.headers) == (201, False)
    assert _count(client, alice) == 1


async def test_a_key_in_flight_is_409_with_retry_after(
    client: TestClient, alice: NewTenant, service_urls: ServiceUrls
) -> None:
    """While another transaction holds the key, the duplicate gets 409 and Retry-After."""
    key = "in-flight-1"
    key_id = uuid.UUID(hex=alice.api_key.split("_")[1])
    lock_name = f"{alice.tenant_id}:{key_id}:{key}"
    engine = create_async_engine(service_urls.runtime_database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:n, 0))"), {"n": lock_name}
            )
            with ThreadPoolExecutor(max_workers=1) as pool:
                response = pool.submit(_post, client, alice, key).result()
    finally:
        await engine.dispose()
    assert response.status_code == 409
    assert response.headers["retry-after"] == "1"
    assert _post(client, alice, key).status_code == 201


async def test_expired_records_are_ignored_and_purged_idempotently(
    client: TestClient, alice: NewTenant, service_urls: ServiceUrls, settings: Settings
) -> None:
    """Past retention a key is new again; the purge removes old records and can run twice."""
    key = "old-key"
    assert _post(client, alice, key).status_code == 201
    owner = create_async_engine(service_urls.owner_database_url)
    try:
        async with owner.begin() as conn:
            await conn.execute(
                text("SELECT set_config(:n, :t, true)"),
                {"n": TENANT_SETTING, "t": str(alice.tenant_id)},
            )
            await conn.execute(
                text("UPDATE idempotency_keys SET created_at = now() - interval '2 days'")
            )
        again = _post(client, alice, key)
        assert again.status_code == 201
        assert "idempotent-replayed" not in again.headers
        assert _count(client, alice) == 2
        async with owner.begin() as conn:
            await conn.execute(
                text("SELECT set_config(:n, :t, true)"),
                {"n": TENANT_SETTING, "t": str(alice.tenant_id)},
            )
            await conn.execute(
                text("UPDATE idempotency_keys SET created_at = now() - interval '2 days'")
            )
        rules = [r for r in retention_policies(settings) if r.table == "idempotency_keys"]
        purged = [await purge_expired(owner, rules) for _ in range(2)]
        assert purged[0] is not None
        assert purged[0]["idempotency_keys"] >= 1
        assert purged[1] == {"idempotency_keys": 0}
    finally:
        await owner.dispose()
