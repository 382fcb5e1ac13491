"""A tenant-scoped Redis cache that does not stampede (REL-CACHE).

- Keys name the tenant: `<prefix>cache:<namespace>:<tenant_id>:<name>`; one tenant can never read
  another's entry, and `invalidate` is called from the write paths that change the data.
- TTLs are jittered (±`jitter`), so entries written together do not expire together.
- XFetch (Vattani et al., PVLDB 8(8), 2015): each entry stores how long it took to compute; a read
  recomputes early with a probability that rises as expiry nears, so a hot key is refreshed
  before it expires instead of by every reader at once after.
- Single flight: a miss takes a Redis lock (`SET NX PX` with a random token, released by a script
  only while the token is still ours); the others wait briefly for its value, or serve the stale
  entry while an early refresh runs. Within one process, concurrent misses share one future.
- Redis down: the cache is bypassed (computed every time) and counted every time, never an
  error; the warning is logged once per interval per namespace, with a `suppressed` count.

Written on redis-py directly: cashews, the maintained asyncio cache, pickles values, brings its
own Redis client, and its early rebuild is a fixed window, not XFetch.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.observability.logging import get_logger
from app.observability.metrics import CACHE_REQUESTS
from app.observability.throttled_warning import ThrottledWarning

log = get_logger("app.cache")
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)
Compute = Callable[[], Awaitable[Any]]


@dataclass(frozen=True)
class CachePolicy:
    namespace: str
    ttl_seconds: float
    jitter: float = 0.1  # each TTL is ttl_seconds * (1 ± jitter)
    beta: float = 1.0  # XFetch eagerness: above 1 refreshes earlier
    lock_seconds: float = 5.0  # the longest a recompute may hold the lock
    wait_seconds: float = 1.0  # how long a miss waits for another's recompute


@dataclass(frozen=True)
class _Entry:
    value: Any
    delta: float  # seconds the value took to compute
    expiry: float  # Unix time it expires


class TenantCache:
    def __init__(
        self,
        redis: Redis | None,
        prefix: str,
        policy: CachePolicy,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._redis = redis
        self._prefix = f"{prefix}cache:{policy.namespace}:"
        self._policy = policy
        self._rng = rng
        self._release = redis.register_script(_RELEASE) if redis is not None else None
        self._inflight: dict[str, asyncio.Future[Any]] = {}
        self._unavailable = ThrottledWarning(log, "cache_unavailable")
        self._invalidation_failed = ThrottledWarning(log, "cache_invalidation_failed")

    def key(self, tenant_id: uuid.UUID, name: str) -> str:
        return f"{self._prefix}{tenant_id}:{name}"

    async def get_or_compute(self, tenant_id: uuid.UUID, name: str, compute: Compute) -> Any:
        """The cached JSON value, or `compute()`'s result (stored for the next reader)."""
        key = self.key(tenant_id, name)
        try:
            entry = await self._read(key)
            if entry is not None and not self._refresh_early(entry):
                self._count("hit")
                return entry.value
            self._count("miss" if entry is None else "early_refresh")
            return await self._single_flight(key, entry, compute)
        except RedisError as exc:
            return await self._bypass(compute, exc)

    async def invalidate(self, tenant_id: uuid.UUID, name: str) -> None:
        """Drop one entry after a write. With Redis down, the jittered TTL bounds staleness."""
        if self._redis is None:
            return
        try:
            await self._redis.delete(self.key(tenant_id, name))
        except RedisError as exc:
            self._invalidation_failed(namespace=self._policy.namespace, error=str(exc))
            self._count("invalidation_failed")

    def _refresh_early(self, entry: _Entry) -> bool:
        """XFetch: now - delta * beta * ln(rand) >= expiry, with rand uniform in (0, 1]."""
        draw = 1.0 - self._rng()
        return time.time() - entry.delta * self._policy.beta * math.log(draw) >= entry.expiry

    async def _single_flight(self, key: str, stale: _Entry | None, compute: Compute) -> Any:
        running = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await self._recompute(key, stale, compute)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here, so an unawaited failure is not reported twice
            raise
        finally:
            del self._inflight[key]
        future.set_result(value)
        return value

    async def _recompute(self, key: str, stale: _Entry | None, compute: Compute) -> Any:
        assert self._redis is not None  # noqa: S101 - _read ran, so there is a client
        token = secrets.token_hex(16)
        lock = f"{key}:lock"
        if await self._redis.set(lock, token, nx=True, px=int(self._policy.lock_seconds * 1000)):
            try:
                started = time.monotonic()
                value = await compute()
                await self._write(key, value, time.monotonic() - started)
                return value
            finally:
                await self._unlock(lock, token)
        if stale is not None:  # another reader refreshes early: the current value is still good
            return stale.value
        return await self._wait_for_value(key, compute)

    async def _unlock(self, lock: str, token: str) -> None:
        assert self._release is not None  # noqa: S101 - set with the client
        with contextlib.suppress(RedisError):  # the lock expires on its own after lock_seconds
            await self._release(keys=[lock], args=[token])

    async def _wait_for_value(self, key: str, compute: Compute) -> Any:
        deadline = time.monotonic() + self._policy.wait_seconds
        while time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            entry = await self._read(key)
            if entry is not None:
                return entry.value
        return await compute()  # the holder is slow or gone: answer anyway, without storing

    async def _read(self, key: str) -> _Entry | None:
        if self._redis is None:
            raise RedisError("no Redis configured")
        raw = await self._redis.get(key)
        if raw is None:
            return None
        stored = json.loads(raw)
        return _Entry(stored["v"], stored["d"], stored["x"])

    async def _write(self, key: str, value: Any, delta: float) -> None:
        assert self._redis is not None  # noqa: S101 - only after a successful read
        spread = self._policy.jitter * (2 * random.random() - 1)  # noqa: S311 - not security
        ttl = self._policy.ttl_seconds * (1 + spread)
        stored = {"v": value, "d": round(delta, 6), "x": time.time() + ttl}
        await self._redis.set(key, json.dumps(stored, separators=(",", ":")), px=int(ttl * 1000))

    async def _bypass(self, compute: Compute, exc: RedisError) -> Any:
        self._unavailable(namespace=self._policy.namespace, error=type(exc).__name__)
        self._count("bypass")
        return await compute()

    def _count(self, outcome: str) -> None:
        CACHE_REQUESTS.labels(self._policy.namespace, outcome).inc()
