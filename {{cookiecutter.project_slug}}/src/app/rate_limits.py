"""Rate-limit policies and their Redis counters: every limit of a request in one round trip.

Written by hand because the `limits` library (slowapi's engine) checks one limit per storage call;
a request here is checked against up to three (client IP, principal, route), and one Lua script
does them all atomically in a single round trip. Fixed windows that start at the first hit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from redis.asyncio import Redis

_RATE = re.compile(r"^([1-9][0-9]{0,8})/(second|minute|hour)$")
_WINDOWS = {"second": 1, "minute": 60, "hour": 3600}
ROUTE_LIMIT_KEY = "x-rate-limit"

# KEYS[i]: a counter; ARGV[i]: its window in ms. Returns count and remaining ms for each key.
_SCRIPT = """
local result = {}
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  if count == 1 then redis.call('PEXPIRE', key, ARGV[i]) end
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then redis.call('PEXPIRE', key, ARGV[i]); ttl = tonumber(ARGV[i]) end
  result[#result + 1] = count
  result[#result + 1] = ttl
end
return result
"""


@dataclass(frozen=True)
class RatePolicy:
    """`quota` requests per `window` seconds, named as in the `RateLimit-Policy` field."""

    name: str
    quota: int
    window: int


def parse_rate(name: str, rate: str) -> RatePolicy:
    """`"600/minute"` → RatePolicy(name, 600, 60)."""
    match = _RATE.match(rate.replace(" ", ""))
    if match is None:
        raise ValueError(f"not a rate like N/second|minute|hour: {rate!r}")
    return RatePolicy(name, int(match.group(1)), _WINDOWS[match.group(2)])


def route_rate_limit(rate: str) -> dict[str, str]:
    """`openapi_extra` declaring a tighter per-client limit on one route."""
    parse_rate("route", rate)
    return {ROUTE_LIMIT_KEY: rate}


@dataclass(frozen=True)
class Usage:
    policy: RatePolicy
    count: int
    reset_ms: int

    @property
    def remaining(self) -> int:
        return max(0, self.policy.quota - self.count)

    @property
    def exceeded(self) -> bool:
        return self.count > self.policy.quota

    @property
    def reset_seconds(self) -> int:
        return max(1, -(-self.reset_ms // 1000))


class RateCounter:
    """Counts one hit on each (policy, identity) pair in a single Redis round trip."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._script = redis.register_script(_SCRIPT)
        self._prefix = prefix

    async def hit(self, checks: list[tuple[RatePolicy, str]]) -> list[Usage]:
        keys = [f"{self._prefix}rl:{policy.name}:{identity}" for policy, identity in checks]
        windows = [policy.window * 1000 for policy, _ in checks]
        raw = await self._script(keys=keys, args=windows)
        return [
            Usage(policy, int(raw[2 * i]), int(raw[2 * i + 1]))
            for i, (policy, _) in enumerate(checks)
        ]
