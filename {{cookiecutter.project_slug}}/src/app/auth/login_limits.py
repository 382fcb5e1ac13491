"""Login rate limits per account and per client IP: 429 with `Retry-After`, even without Redis.

Every login attempt counts against two fixed windows (`LOGIN_RATE_LIMIT_PER_ACCOUNT` on the
case-folded email, `LOGIN_RATE_LIMIT_PER_IP` on the client's address or IPv6 network), checked
before the password is: guessing is slowed per account and per source. Counting attempts rather
than failures keeps the check one atomic round trip, so parallel guesses cannot slip past it; a
successful login clears its account's count (`reset`), never its IP's, so one known password
cannot buy a source more guesses. An unknown email is counted like any other.

Redis down: the general limiter fails open, but login must not lose its limit, so each process
falls back to counting in its own memory (bounded, least recently used evicted) with the same
quotas. With N processes an attacker gets at most N times the quota while Redis is away; the
fallback is logged (throttled) and counted in `login_rate_limit_decisions_total{decision=
"local_fallback"}`. Failing closed instead would let anyone who can take Redis down lock every
user out.

Account keys hold a SHA-256 of the email, so Redis holds no address.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from cachetools import TTLCache
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.http.client_ip import rate_limit_identity
from app.http.errors import DomainError
from app.middleware.rate_limits import COUNT_WINDOWS_SCRIPT, RatePolicy, parse_rate
from app.observability.logging import get_logger
from app.observability.throttled_warning import ThrottledWarning
from app.settings import Settings

log = get_logger("app.auth.login_limits")
LOGIN_LIMIT_DECISIONS = Counter(
    "login_rate_limit_decisions_total",
    "Login rate-limit checks by decision: allowed, limited, local_fallback (Redis unavailable).",
    ["decision"],
)
LOCAL_ENTRIES = 100_000


class TooManyLoginAttemptsError(DomainError):
    status = 429
    slug = "too-many-login-attempts"
    title = "Too many login attempts"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many login attempts; retry in {retry_after} s.")
        self.retry_after = retry_after

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


def account_key(email: str) -> str:
    """The account's bucket: a digest of the trimmed, case-folded email."""
    return hashlib.sha256(email.strip().casefold().encode()).hexdigest()


class LocalWindows:
    """Fixed windows counted in this process's memory: the fallback while Redis is down.

    Entries expire with their window; at `maxsize` the least recently used goes first, so memory
    stays bounded whatever the attacker sends.
    """

    def __init__(self, maxsize: int = LOCAL_ENTRIES, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        # (count, window end) by key; the cache's own TTL only bounds how long a key is kept.
        self._windows: TTLCache[str, tuple[int, float]] = TTLCache(
            maxsize, ttl=24 * 3600, timer=clock
        )

    def hit(self, key: str, window: int) -> tuple[int, int]:
        """Count one hit on `key`; its count and the milliseconds left in its window."""
        now = self._clock()
        count, ends = self._windows.get(key, (0, now + window))
        if ends <= now:
            count, ends = 0, now + window
        self._windows[key] = (count + 1, ends)
        return count + 1, int((ends - now) * 1000)

    def clear(self, key: str) -> None:
        self._windows.pop(key, None)


class LoginLimiter:
    """Counts login attempts in Redis (one script, one round trip), else in process memory."""

    def __init__(
        self,
        redis: Redis | None,
        per_account: str,
        per_ip: str,
        *,
        key_prefix: str = "",
        ipv6_prefix: int = 64,
    ) -> None:
        self._redis = redis
        self._script: Any = (
            redis.register_script(COUNT_WINDOWS_SCRIPT) if redis is not None else None
        )
        self.per_account = parse_rate("login-account", per_account)
        self.per_ip = parse_rate("login-ip", per_ip)
        self._prefix = f"{key_prefix}login:"
        self._ipv6_prefix = ipv6_prefix
        self.local = LocalWindows()
        self._unavailable = ThrottledWarning(log, "login_rate_limit_local_fallback")

    @classmethod
    def from_settings(cls, settings: Settings, redis: Redis | None) -> LoginLimiter:
        return cls(
            redis,
            settings.login_rate_limit_per_account,
            settings.login_rate_limit_per_ip,
            key_prefix=settings.key_prefix,
            ipv6_prefix=settings.rate_limit_ipv6_prefix,
        )

    def _keys(self, email: str, client_ip: str) -> list[tuple[RatePolicy, str]]:
        ip = rate_limit_identity(client_ip, self._ipv6_prefix)
        return [
            (self.per_account, f"{self._prefix}account:{account_key(email)}"),
            (self.per_ip, f"{self._prefix}ip:{ip}"),
        ]

    async def _count(self, checks: list[tuple[RatePolicy, str]]) -> list[tuple[int, int]]:
        if self._script is not None:
            try:
                raw = await self._script(
                    keys=[key for _, key in checks],
                    args=[policy.window_ms for policy, _ in checks],
                )
                return [(int(raw[2 * i]), int(raw[2 * i + 1])) for i in range(len(checks))]
            except (RedisError, OSError) as error:
                self._unavailable(error=type(error).__name__)
        LOGIN_LIMIT_DECISIONS.labels("local_fallback").inc()
        return [self.local.hit(key, policy.window) for policy, key in checks]

    async def check(self, email: str, client_ip: str) -> None:
        """Count one login attempt; raise `TooManyLoginAttemptsError` (429) when over a limit.

        `client_ip` is `app.http.client_ip.client_ip(scope, settings.trusted_proxies)`.
        """
        checks = self._keys(email, client_ip)
        counts = await self._count(checks)
        over = [
            reset_ms
            for (policy, _), (count, reset_ms) in zip(checks, counts, strict=True)
            if count > policy.quota
        ]
        if over:
            LOGIN_LIMIT_DECISIONS.labels("limited").inc()
            retry_after = max(1, -(-max(over) // 1000))
            log.info("login_rate_limited", retry_after=retry_after)
            raise TooManyLoginAttemptsError(retry_after)
        LOGIN_LIMIT_DECISIONS.labels("allowed").inc()

    async def reset(self, email: str) -> None:
        """After a successful login: clear the account's count (the IP's stays)."""
        key = f"{self._prefix}account:{account_key(email)}"
        self.local.clear(key)
        if self._redis is not None:
            try:
                await self._redis.delete(key)
            except (RedisError, OSError) as error:
                self._unavailable(error=type(error).__name__)
