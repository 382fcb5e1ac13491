"""REL-CACHE on real Redis: one recomputation for many misses, tenant keys, jitter, XFetch."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from app.cache.tenant_cache import CachePolicy, TenantCache
from app.dev.services import ServiceUrls
from app.observability.logging import configure_logging
from tests.processes import free_port

LogLines = Callable[[], list[dict[str, object]]]


@pytest.fixture
async def redis(service_urls: ServiceUrls) -> AsyncIterator[Redis]:
    client: Redis = Redis.from_url(service_urls.redis_url)
    yield client
    await client.aclose()


def policy(**overrides: float) -> CachePolicy:
    values: dict[str, float] = {"ttl_seconds": 60.0}
    values.update(overrides)
    return CachePolicy(namespace=f"test-{uuid.uuid4().hex[:8]}", **values)


class Counting:
    """A slow computation that counts its calls."""

    def __init__(self, value: object = "fresh", seconds: float = 0.2) -> None:
        self.calls = 0
        self._value = value
        self._seconds = seconds

    async def __call__(self) -> object:
        self.calls += 1
        await asyncio.sleep(self._seconds)
        return self._value


async def test_concurrent_misses_in_two_processes_compute_once(
    redis: Redis, service_urls: ServiceUrls
) -> None:
    """50 concurrent misses, over two clients standing for two app processes: one compute."""
    other: Redis = Redis.from_url(service_urls.redis_url)
    shared = policy()
    caches = [TenantCache(redis, "t:", shared), TenantCache(other, "t:", shared)]
    compute, tenant = Counting({"total": 3}), uuid.uuid4()
    results = await asyncio.gather(
        *(caches[i % 2].get_or_compute(tenant, "stats", compute) for i in range(50))
    )
    await other.aclose()
    assert compute.calls == 1
    assert results == [{"total": 3}] * 50


async def test_keys_are_scoped_to_the_tenant(redis: Redis) -> None:
    """One tenant never reads another's entry under the same name; the key names the tenant."""
    cache = TenantCache(redis, "t:", policy())
    first, second = uuid.uuid4(), uuid.uuid4()
    assert await cache.get_or_compute(first, "stats", Counting("first's", 0)) == "first's"
    assert await cache.get_or_compute(second, "stats", Counting("second's", 0)) == "second's"
    assert await cache.get_or_compute(first, "stats", Counting("recomputed", 0)) == "first's"
    assert str(first) in cache.key(first, "stats")


async def test_invalidation_makes_the_next_read_recompute(redis: Redis) -> None:
    """After `invalidate`, the next read computes the new value instead of serving the old."""
    cache, tenant = TenantCache(redis, "t:", policy()), uuid.uuid4()
    await cache.get_or_compute(tenant, "stats", Counting("old", 0))
    await cache.invalidate(tenant, "stats")
    assert await cache.get_or_compute(tenant, "stats", Counting("new", 0)) == "new"


async def test_ttls_are_jittered_within_bounds(redis: Redis) -> None:
    """Entries written together expire at different times, each within ttl ± 10 %."""
    cache, tenant = TenantCache(redis, "t:", policy(ttl_seconds=100, jitter=0.1)), uuid.uuid4()
    for n in range(20):
        await cache.get_or_compute(tenant, f"k{n}", Counting(n, 0))
    ttls = [await redis.pttl(cache.key(tenant, f"k{n}")) for n in range(20)]
    assert all(89_000 <= ttl <= 110_000 for ttl in ttls), ttls
    assert len(set(ttls)) > 10


async def test_xfetch_refreshes_a_hot_entry_before_it_expires(redis: Redis) -> None:
    """Near expiry, a low draw recomputes early; a draw of 1 (ln 1 = 0) serves the entry."""
    tenant = uuid.uuid4()
    shared = policy(ttl_seconds=1.0, jitter=0.0)
    await TenantCache(redis, "t:", shared).get_or_compute(tenant, "k", Counting("v1", 0.05))
    await asyncio.sleep(0.8)  # 0.2 s left; the value took 0.05 s to compute
    lucky = TenantCache(redis, "t:", shared, rng=lambda: 0.0)  # draw 1: no early refresh
    assert await lucky.get_or_compute(tenant, "k", Counting("v2", 0)) == "v1"
    eager = TenantCache(redis, "t:", shared, rng=lambda: 1.0 - 1e-3)  # -ln(0.001) = 6.9
    assert await eager.get_or_compute(tenant, "k", Counting("v2", 0)) == "v2"


async def test_a_waiter_serves_the_stale_value_while_another_refreshes(redis: Redis) -> None:
    """While another process holds the refresh lock, an early refresh serves the stale value."""
    tenant, shared = uuid.uuid4(), policy()
    cache = TenantCache(redis, "t:", shared)
    await cache.get_or_compute(tenant, "k", Counting("stale", 0))
    await redis.set(f"{cache.key(tenant, 'k')}:lock", "someone-else", px=5000)
    eager = TenantCache(redis, "t:", shared, rng=lambda: 1.0 - 1e-12)
    started = time.monotonic()
    assert await eager.get_or_compute(tenant, "k", Counting("fresh", 1.0)) == "stale"
    assert time.monotonic() - started < 0.5


async def test_redis_down_bypasses_the_cache_and_logs_it(log_lines: LogLines) -> None:
    """With Redis down every read computes; each kind of failure is logged once, not per call."""
    dead: Redis = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    cache, compute = TenantCache(dead, "t:", policy()), Counting("computed", 0)
    configure_logging("INFO", "json")
    log_lines()
    for _ in range(20):
        assert await cache.get_or_compute(uuid.uuid4(), "k", compute) == "computed"
    for _ in range(5):
        await cache.invalidate(uuid.uuid4(), "k")
    await dead.aclose()
    assert compute.calls == 20
    events = [line["event"] for line in log_lines()]
    assert events.count("cache_unavailable") == 1
    assert events.count("cache_invalidation_failed") == 1
