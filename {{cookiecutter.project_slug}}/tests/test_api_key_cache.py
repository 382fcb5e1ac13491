"""Verified API keys are remembered for a bounded time; refused keys never are."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.auth.api_keys import parse_key
from app.auth.principal import KEY_CACHE_SECONDS, ApiKeyCache, KeyGrant
from app.dev.services import ServiceUrls
from app.main import create_app
from app.settings import Settings
from app.tenants.service import NewTenant


def _revoke(owner_url: str, tenant: NewTenant) -> None:
    parsed = parse_key(tenant.api_key)
    assert parsed is not None

    async def revoke() -> None:
        engine = create_async_engine(owner_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    text("SELECT set_config('app.tenant_id', :tenant, true)"),
                    {"tenant": str(tenant.tenant_id)},
                )
                await connection.execute(
                    text("UPDATE api_keys SET revoked_at = now() WHERE id = :id"),
                    {"id": parsed[0]},
                )
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, revoke()).result()


def test_a_revoked_key_is_refused_once_its_cache_entry_expires(
    make_settings: Callable[..., Settings],
    new_tenant: Callable[[], NewTenant],
    service_urls: ServiceUrls,
) -> None:
    tenant = new_tenant()
    now = [1000.0]
    app = create_app(make_settings())
    app.state.api_key_cache = ApiKeyCache(clock=lambda: now[0])
    headers = {"Authorization": f"Bearer {tenant.api_key}"}
    with TestClient(app) as client:
        assert client.get("/api/v1/notes", headers=headers).status_code == 200
        _revoke(service_urls.owner_database_url, tenant)
        # The documented bound: within KEY_CACHE_SECONDS the process may still accept it.
        now[0] += KEY_CACHE_SECONDS - 1
        assert client.get("/api/v1/notes", headers=headers).status_code == 200
        now[0] += 1
        refused = client.get("/api/v1/notes", headers=headers)
        assert refused.status_code == 401
        assert refused.json()["detail"] == "The API key is unknown, revoked or expired."
        # A refusal is not remembered as anything: it keeps being refused.
        assert client.get("/api/v1/notes", headers=headers).status_code == 401


def test_a_wrong_secret_or_unknown_key_is_refused_even_after_a_good_one(
    make_settings: Callable[..., Settings], new_tenant: Callable[[], NewTenant]
) -> None:
    tenant = new_tenant()
    wrong_secret = tenant.api_key[:-1] + ("A" if tenant.api_key[-1] != "A" else "B")
    unknown = f"ak_{uuid.uuid4().hex}_{tenant.api_key[36:]}"
    with TestClient(create_app(make_settings())) as client:
        good = {"Authorization": f"Bearer {tenant.api_key}"}
        assert client.get("/api/v1/notes", headers=good).status_code == 200
        for key in (wrong_secret, unknown, wrong_secret):
            response = client.get("/api/v1/notes", headers={"Authorization": f"Bearer {key}"})
            assert response.status_code == 401, key


def test_the_cache_is_bounded() -> None:
    """Past `max_entries` the least recently used key is forgotten."""
    cache = ApiKeyCache(max_entries=2)
    keys = [(uuid.uuid4(), bytes([i]) * 32, uuid.uuid4()) for i in range(3)]
    for key_id, secret_hash, tenant_id in keys:
        cache.put(key_id, secret_hash, KeyGrant(tenant_id, None))
    assert cache.get(keys[0][0], keys[0][1]) is None
    assert [cache.get(k, s) for k, s, _ in keys[1:]] == [t for _, _, t in keys[1:]]


class _Lookup:
    """Stands in for the database check: counts its calls, takes 50 ms, answers `answer(call)`."""

    def __init__(self, answer: Callable[[int], uuid.UUID | None]) -> None:
        self.calls = 0
        self.answer = answer

    async def __call__(self) -> KeyGrant | None:
        self.calls += 1
        await asyncio.sleep(0.05)
        tenant = self.answer(self.calls)
        return None if tenant is None else KeyGrant(tenant, None)


async def test_concurrent_misses_of_one_key_share_one_lookup() -> None:
    """An expired entry under load costs one database lookup, not one per waiting request."""
    cache = ApiKeyCache()
    key_id, secret_hash, tenant = uuid.uuid4(), b"hash", uuid.uuid4()
    lookup = _Lookup(lambda _: tenant)
    results = await asyncio.gather(
        *(cache.verified(key_id, secret_hash, lookup) for _ in range(20))
    )
    assert results == [tenant] * 20
    assert lookup.calls == 1
    assert await cache.verified(key_id, secret_hash, lookup) == tenant
    assert lookup.calls == 1  # and then it is cached


async def test_a_refused_or_failed_lookup_is_not_shared() -> None:
    """Waiters on a lookup that found no key, or raised, each ask the database themselves."""
    cache = ApiKeyCache()
    key_id, secret_hash = uuid.uuid4(), b"hash"
    refuse = _Lookup(lambda _: None)
    results = await asyncio.gather(*(cache.verified(key_id, secret_hash, refuse) for _ in range(5)))
    assert results == [None] * 5
    assert refuse.calls == 5

    def fail_first(call: int) -> uuid.UUID | None:
        if call == 1:
            raise ConnectionError("database down")
        return key_id

    fail_then_answer = _Lookup(fail_first)
    outcomes = await asyncio.gather(
        *(cache.verified(key_id, secret_hash, fail_then_answer) for _ in range(3)),
        return_exceptions=True,
    )
    assert isinstance(outcomes[0], ConnectionError)
    assert outcomes[1:] == [key_id, key_id]


def test_a_cached_key_is_not_served_past_its_expiry() -> None:
    """An entry carries the key's expiry: from that instant it misses, whatever its TTL says."""
    wall = [1_000.0]
    cache = ApiKeyCache(wall_clock=lambda: wall[0])
    key_id, secret_hash, tenant = uuid.uuid4(), b"hash", uuid.uuid4()
    cache.put(key_id, secret_hash, KeyGrant(tenant, datetime.fromtimestamp(1_005, UTC)))
    assert cache.get(key_id, secret_hash) == tenant
    wall[0] = 1_004.999
    assert cache.get(key_id, secret_hash) == tenant
    wall[0] = 1_005.0
    assert cache.get(key_id, secret_hash) is None


def test_a_wrong_secret_for_a_cached_key_id_misses() -> None:
    """The entry is found by key id but only a matching secret hash gets its tenant."""
    cache = ApiKeyCache()
    key_id, tenant = uuid.uuid4(), uuid.uuid4()
    cache.put(key_id, b"right", KeyGrant(tenant, None))
    assert cache.get(key_id, b"wrong") is None
    assert cache.get(key_id, b"right") == tenant


async def test_an_evicted_key_misses_and_a_lookup_racing_the_eviction_is_not_kept() -> None:
    """`evict` forgets a key at once; an answer read before the eviction is not cached after it."""
    cache = ApiKeyCache()
    key_id, secret_hash, tenant = uuid.uuid4(), b"hash", uuid.uuid4()
    cache.put(key_id, secret_hash, KeyGrant(tenant, None))
    cache.evict(key_id)
    assert cache.get(key_id, secret_hash) is None
    lookup = _Lookup(lambda _: tenant)
    racing = asyncio.create_task(cache.verified(key_id, secret_hash, lookup))
    await asyncio.sleep(0.01)  # the lookup is under way (it takes 50 ms)
    cache.evict(key_id)
    assert await racing == tenant
    assert cache.get(key_id, secret_hash) is None
    assert await cache.verified(key_id, secret_hash, lookup) == tenant
    assert cache.get(key_id, secret_hash) == tenant


def test_clear_forgets_every_key() -> None:
    """`clear` (after missed notices) empties the cache."""
    cache = ApiKeyCache()
    keys = [(uuid.uuid4(), bytes([i]) * 32) for i in range(3)]
    for key_id, secret_hash in keys:
        cache.put(key_id, secret_hash, KeyGrant(uuid.uuid4(), None))
    cache.clear()
    assert all(cache.get(key_id, secret_hash) is None for key_id, secret_hash in keys)
