"""Rate-limit policies and their Redis counters: every limit of a request in one round trip.

Written by hand because the `limits` library (slowapi's engine) checks one limit per storage call;
a request here is checked against up to three (client IP, principal, route), and one Lua script
does them all atomically in a single round trip. Fixed windows that start at the first hit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from opentelemetry import trace

from app.cache.connections import LeanRedis, LeanScript

_RATE = re.compile(r"^([1-9][0-9]{0,8})/(second|minute|hour)$")
_WINDOWS = {"second": 1, "minute": 60, "hour": 3600}
ROUTE_LIMIT_KEY = "x-rate-limit"

# KEYS[i]: a counter; ARGV[i]: its window in ms. Returns count and remaining ms for each key.
COUNT_WINDOWS_SCRIPT = """
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
    # Made once: every response carries the policy's field, and every check its window.
    policy_field: bytes = field(init=False, repr=False, compare=False)
    window_ms: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        field_value = f'"{self.name}";q={self.quota};w={self.window}'.encode()
        object.__setattr__(self, "policy_field", field_value)
        object.__setattr__(self, "window_ms", self.window * 1000)


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


@dataclass(slots=True)
class Usage:
    """One policy's count after this request's hit (not frozen: one is made per check, and a
    frozen dataclass's `__init__` costs twice as much)."""

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
    """Counts one hit on each (policy, identity) pair in a single Redis round trip.

    It runs on its own lean, pipelined connection (`app.cache.connections`), not the shared redis-py
    pool, which costs about three times the CPU per command (docs/performance.md). That
    connection is not instrumented, so the span of the round trip is made here, and only inside
    a sampled trace: an unsampled request pays for one context lookup, and a process without
    tracing (`tracing=False`, as the middleware stack decides once) for none.
    """

    def __init__(self, redis: LeanRedis, prefix: str, *, tracing: bool = True) -> None:
        self._redis = redis
        self._script = LeanScript(redis, COUNT_WINDOWS_SCRIPT)
        self._prefix = prefix
        self._tracing = tracing
        self._tracer: trace.Tracer | None = None

    async def hit(self, checks: list[tuple[RatePolicy, str]]) -> list[Usage]:
        prefix = self._prefix
        keys = [f"{prefix}rl:{policy.name}:{identity}" for policy, identity in checks]
        windows = [policy.window_ms for policy, _ in checks]
        if self._tracing and trace.get_current_span().is_recording():
            raw = await self._traced(keys, windows)
        else:
            raw = await self._script(keys, windows)
        return [Usage(policy, raw[2 * i], raw[2 * i + 1]) for i, (policy, _) in enumerate(checks)]

    async def _traced(self, keys: list[str], windows: list[int]) -> list[int]:
        attributes: dict[str, str | int] = {
            "db.system": "redis",
            "db.statement": f"EVALSHA {self._script.sha} {len(keys)}",
            "net.peer.name": self._redis.host,
            "net.peer.port": self._redis.port,
        }
        if self._tracer is None:  # on first use: the provider is installed by then
            self._tracer = trace.get_tracer(__name__)
        with self._tracer.start_as_current_span(
            "EVALSHA", kind=trace.SpanKind.CLIENT, attributes=attributes
        ):
            raw: list[int] = await self._script(keys, windows)
            return raw

    async def aclose(self) -> None:
        await self._redis.aclose()
