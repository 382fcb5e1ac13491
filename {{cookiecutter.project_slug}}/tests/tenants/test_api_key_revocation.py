"""SEC-TENANT: a running service stops accepting a revoked, rotated-out or expired API key at once
when the key-change notice arrives, and within KEY_CACHE_SECONDS when it does not."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.auth.api_keys import hash_secret
from app.auth.principal import KEY_CACHE_SECONDS
from app.dev.services import ServiceUrls
from app.main import create_app
from app.settings import Settings
from app.tenants.admin import create_key_now
from app.tenants.service import NewTenant
from tests.processes import free_port
from tests.tenants.key_clients import Cli, Serving, until

# Long enough for a notice to cross Redis on a loaded machine, far shorter than the cache TTL.
NOTICE_WAIT_S = 3.0


def test_a_revoked_key_is_refused_at_once_by_a_running_service(
    serving: Serving, cli: Cli, new_tenant: Callable[[], NewTenant]
) -> None:
    """`revoke` commits, then notifies every process over Redis: the cached key is a 401 at once."""
    tenant, bystander = new_tenant(), new_tenant()
    assert serving.status(tenant.api_key) == 200
    assert serving.status(bystander.api_key) == 200
    key_id = tenant.api_key.split("_")[1]  # the 32 hex digits are accepted as the key id
    status, revoked, _ = cli("revoke", key_id)
    assert status == 0
    assert revoked == {"revoked": str(uuid.UUID(key_id)), "notice_sent": True}
    assert serving.status_within(tenant.api_key, 401, NOTICE_WAIT_S) == 401
    assert serving.status(bystander.api_key) == 200


def test_without_redis_a_revocation_takes_at_most_the_cache_ttl(
    serving: Serving,
    cli: Cli,
    new_tenant: Callable[[], NewTenant],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no notice sent, a cached key keeps working until its entry is KEY_CACHE_SECONDS old."""
    tenant = new_tenant()
    assert serving.status(tenant.api_key) == 200
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    status, revoked, err = cli("revoke", tenant.api_key.split("_")[1])
    assert status == 0
    assert revoked is not None
    assert revoked["notice_sent"] is False
    assert "notice" in err
    assert serving.status(tenant.api_key) == 200
    serving.clock[0] += KEY_CACHE_SECONDS
    assert serving.status(tenant.api_key) == 401


def test_an_expired_key_is_refused_even_while_cached(
    serving: Serving, new_tenant: Callable[[], NewTenant], service_urls: ServiceUrls
) -> None:
    """A key past its `expires_at` is a 401 from that instant, cached or not."""
    tenant = new_tenant()
    with ThreadPoolExecutor(max_workers=1) as pool:
        key = pool.submit(
            create_key_now,
            service_urls.owner_database_url,
            tenant.tenant_id,
            "short-lived",
            timedelta(seconds=1.5),
        ).result()
    assert key.expires_at is not None
    assert serving.status(key.api_key) == 200
    until(key.expires_at.isoformat())
    assert serving.status(key.api_key) == 401
    assert serving.status(tenant.api_key) == 200


async def test_the_database_refuses_an_expired_key(
    service_urls: ServiceUrls, new_tenant: Callable[[], NewTenant]
) -> None:
    """Both key functions the runtime role may call answer nothing for an expired key."""
    tenant = new_tenant()
    with ThreadPoolExecutor(max_workers=1) as pool:
        key = pool.submit(
            create_key_now,
            service_urls.owner_database_url,
            tenant.tenant_id,
            "expired",
            timedelta(seconds=0.2),
        ).result()
    assert key.expires_at is not None
    until(key.expires_at.isoformat())
    _, key_hex, secret = key.api_key.split("_", 2)
    engine = create_async_engine(service_urls.runtime_database_url)
    try:
        async with engine.connect() as conn:
            params = {"id": uuid.UUID(key_hex), "hash": hash_secret(secret)}
            old = await conn.scalar(text("SELECT authenticate_api_key(:id, :hash)"), params)
            rows = await conn.execute(text("SELECT * FROM verify_api_key(:id, :hash)"), params)
            assert old is None
            assert rows.all() == []
    finally:
        await engine.dispose()


def test_rotate_keeps_both_keys_for_the_overlap_then_only_the_new_one(
    serving: Serving, cli: Cli, new_tenant: Callable[[], NewTenant]
) -> None:
    """`rotate --overlap-hours H`: old and new key both work for H hours, then only the new."""
    tenant = new_tenant()
    assert serving.status(tenant.api_key) == 200
    old_id = tenant.api_key.split("_")[1]
    status, rotated, _ = cli("rotate", old_id, "--overlap-hours", "0.0005")
    assert status == 0
    assert rotated is not None
    assert rotated["tenant_id"] == str(tenant.tenant_id)
    assert rotated["replaced_key_id"] == str(uuid.UUID(old_id))
    assert rotated["notice_sent"] is True
    assert serving.status(rotated["api_key"]) == 200
    assert serving.status(tenant.api_key) == 200
    until(rotated["replaced_key_expires_at"])
    assert serving.status(tenant.api_key) == 401
    assert serving.status(rotated["api_key"]) == 200


def test_rotate_with_no_overlap_refuses_the_old_key_at_once(
    serving: Serving, cli: Cli, new_tenant: Callable[[], NewTenant]
) -> None:
    """`rotate --overlap-hours 0` ends the old key now: a 401 as soon as the notice lands."""
    tenant = new_tenant()
    assert serving.status(tenant.api_key) == 200
    status, rotated, _ = cli("rotate", tenant.api_key.split("_")[1], "--overlap-hours", "0")
    assert status == 0
    assert rotated is not None
    assert serving.status_within(tenant.api_key, 401, NOTICE_WAIT_S) == 401
    assert serving.status(rotated["api_key"]) == 200


def test_the_service_stops_promptly_even_while_its_listener_subscribes(
    make_settings: Callable[..., Settings],
) -> None:
    """Shutdown right after start-up, while the listener is still subscribing, does not hang."""

    def start_and_stop() -> None:
        with TestClient(create_app(make_settings())):
            pass

    for _ in range(3):
        # A daemon thread: a hang fails the test instead of blocking the run's exit.
        attempt = threading.Thread(target=start_and_stop, daemon=True)
        attempt.start()
        attempt.join(timeout=15)
        assert not attempt.is_alive(), "the app did not stop"
