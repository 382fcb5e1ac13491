"""Rate limiting per client IP, per principal and per route, with `Retry-After` on 429.

Headers follow draft-ietf-httpapi-ratelimit-headers-10: `RateLimit-Policy: "ip";q=600;w=60` and
`RateLimit: "ip";r=599;t=60` for the tightest policy. Requests that fail authentication still
count against the IP limit, which is what slows key guessing. Redis is optional: when it is down
the request is served (fail open), counted, and logged once per interval (`ThrottledWarning`).

Identities: the IP bucket is the client's address, or its IPv6 network (`client_ip`); the
principal bucket is the parsed credential, never the header as sent, so `bearer KEY` and
`Bearer  KEY` spend the same quota as `Bearer KEY`. A browser session's bucket is its user in its
tenant, read from the access cookie after its signature is verified (docs/rate-limiting.md).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Awaitable, Callable, Sequence

from fastapi import FastAPI
from redis.exceptions import RedisError
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth.api_keys import parse_key
from app.auth.cookie_names import ACCESS_COOKIE
from app.auth.signing_keys import SigningKeys
from app.auth.tokens import verify_access_token
from app.http.client_ip import client_ip, rate_limit_identity
from app.http.problems import problem_body, render_problem
from app.http.routes import api_routes
from app.middleware.headers import RawHeader, set_headers
from app.middleware.rate_limits import ROUTE_LIMIT_KEY, RateCounter, RatePolicy, Usage, parse_rate
from app.observability.logging import get_logger
from app.observability.metrics import RATE_LIMIT_DECISIONS
from app.observability.throttled_warning import ThrottledWarning
from app.settings import IPNetwork

log = get_logger("app.rate_limit")
EXEMPT_PREFIXES = ("/health/", "/metrics")
QUOTA_EXCEEDED = "https://iana.org/assignments/http-problem-types#quota-exceeded"
RouteLimit = tuple[re.Pattern[str], frozenset[str], RatePolicy, str]


def _route_limits(app: FastAPI) -> list[RouteLimit]:
    limits: list[RouteLimit] = []
    for route in api_routes(app):
        rate = (route.openapi_extra or {}).get(ROUTE_LIMIT_KEY)
        if rate:
            policy = parse_rate("route", rate)
            methods = frozenset(route.methods or ())
            limits.append((route.path_regex, methods, policy, route.path or ""))
    return limits


def api_key_identity(token: bytes) -> str | None:
    """The principal bucket of an API key: its id, plus a fragment of its secret's hash.

    The fragment keeps the original promise that nobody can aim at another client's bucket
    without holding that client's key (a key id alone shows up in listings and logs). A token
    that is not an API key has no principal bucket; it fails authentication, on its IP's quota.
    """
    parsed = parse_key(token.decode("latin-1"))
    if parsed is None:
        return None
    key_id, secret_hash = parsed
    return f"key:{key_id.hex}:{secret_hash[:8].hex()}"


def session_identity(keys: SigningKeys, token: bytes) -> str | None:
    """The principal bucket of a session's access token: its user in its tenant.

    Verified first (signature, `kid`, lifetime; no database): the claims of an unverified token
    are the attacker's to choose, and would let one spend a victim's quota. One HMAC per new
    token per process (the memo below), and a token serves many requests in its minutes.
    """
    claims = verify_access_token(keys, token.decode("latin-1"))
    if claims is None:
        return None
    return f"user:{claims.tenant_id.hex}:{claims.user_id.hex}"


_ACCESS_COOKIE_NAME = ACCESS_COOKIE.encode() + b"="


def access_cookie(cookie_header: bytes) -> bytes | None:
    """The access cookie as the app reads it (Starlette's parser; the first Cookie header)."""
    if _ACCESS_COOKIE_NAME not in cookie_header:  # the usual case: no parsing
        return None
    value = cookie_parser(cookie_header.decode("latin-1")).get(ACCESS_COOKIE)
    return value.encode("latin-1") if value else None


# Parsed credentials by a digest of the token (no plaintext secret kept in memory): a busy
# client pays for one hash per request, not for parsing. Emptied when full.
PRINCIPAL_MEMO_ENTRIES = 4096


RATE_LIMIT_FIELDS = frozenset({b"ratelimit-policy", b"ratelimit"})


def rate_limit_fields(usage: Usage) -> list[RawHeader]:
    """`RateLimit-Policy` and `RateLimit` for `usage`, as raw ASGI header pairs."""
    remaining = f'"{usage.policy.name}";r={usage.remaining};t={usage.reset_seconds}'
    return [(b"ratelimit-policy", usage.policy.policy_field), (b"ratelimit", remaining.encode())]


def _tightest(usages: list[Usage]) -> Usage:
    if len(usages) == 1:  # the usual case: one IP limit, no principal or route limit
        return usages[0]
    return min(usages, key=lambda usage: usage.remaining)


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        counter: RateCounter,
        per_ip: str,
        per_principal: str,
        trusted_proxies: Sequence[IPNetwork],
        support_url: str,
        ipv6_prefix: int = 64,
        session_keys: SigningKeys | None = None,
    ) -> None:
        self.app = app
        self.counter = counter
        self.per_ip = parse_rate("ip", per_ip)
        self.per_principal = parse_rate("principal", per_principal)
        self.trusted_proxies = list(trusted_proxies)
        self.support_url = support_url
        self._route_limits: list[RouteLimit] | None = None
        self.ipv6_prefix = ipv6_prefix
        self._allowed = RATE_LIMIT_DECISIONS.labels("allowed")  # every request: look it up once
        self._unavailable = ThrottledWarning(log, "rate_limit_unavailable")
        self._principals: dict[bytes, str | None] = {}
        self.session_keys = session_keys

    def _principal(self, scope: Scope) -> str | None:
        """The caller's credential identity (an API key, else a session), not its spelling.
        As in `app.auth.principal`, an Authorization header wins over the session cookie."""
        cookies: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                parts = value.split()  # any case of the scheme, any run of spaces
                if len(parts) != 2:
                    return None
                return self._memo(b"k", parts[1], api_key_identity)
            if name == b"cookie" and cookies is None:
                cookies = value
        if cookies is None or self.session_keys is None:
            return None
        token = access_cookie(cookies)
        if token is None:
            return None
        keys = self.session_keys
        return self._memo(b"s", token, lambda raw: session_identity(keys, raw))

    def _memo(
        self, kind: bytes, token: bytes, identify: Callable[[bytes], str | None]
    ) -> str | None:
        # By kind too: an API key sent as a cookie must not memoize "no bucket" for that key.
        digest = kind + hashlib.sha256(token).digest()
        if digest not in self._principals:
            if len(self._principals) >= PRINCIPAL_MEMO_ENTRIES:
                self._principals.clear()
            self._principals[digest] = identify(token)
        return self._principals[digest]

    def _checks(self, scope: Scope) -> list[tuple[RatePolicy, str]]:
        ip = rate_limit_identity(client_ip(scope, self.trusted_proxies), self.ipv6_prefix)
        principal = self._principal(scope)
        checks = [(self.per_ip, ip)]
        if principal is not None:
            checks.append((self.per_principal, principal))
        if self._route_limits is None:
            self._route_limits = _route_limits(scope["app"])
        for pattern, methods, policy, template in self._route_limits:
            if scope["method"] in methods and pattern.match(scope["path"]):
                checks.append((policy, f"{template}:{principal or ip}"))
        return checks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        try:
            usages = await self.counter.hit(self._checks(scope))
        except (RedisError, OSError) as error:
            self._unavailable(error=type(error).__name__, fail_open=True)
            RATE_LIMIT_DECISIONS.labels("fail_open").inc()
            await self.app(scope, receive, send)
            return
        exceeded = [usage for usage in usages if usage.exceeded]
        if exceeded:
            RATE_LIMIT_DECISIONS.labels("limited").inc()
            await self._reject(scope, receive, send, exceeded)
            return
        self._allowed.inc()
        headers = rate_limit_fields(_tightest(usages))

        def send_with_headers(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                set_headers(message, headers, RATE_LIMIT_FIELDS)
            return send(message)

        await self.app(scope, receive, send_with_headers)

    async def _reject(
        self, scope: Scope, receive: Receive, send: Send, exceeded: list[Usage]
    ) -> None:
        retry_after = max(usage.reset_seconds for usage in exceeded)
        names = [usage.policy.name for usage in exceeded]
        log.info("rate_limited", policies=names, retry_after=retry_after)
        body = problem_body(
            429,
            "Too many requests",
            f"Rate limit exceeded ({', '.join(names)}); retry in {retry_after} s.",
            self.support_url,
            problem_type=QUOTA_EXCEEDED,
        )
        body["violated-policies"] = names
        headers = {"Retry-After": str(math.ceil(retry_after))}
        for name, value in rate_limit_fields(exceeded[0]):
            headers[name.decode()] = value.decode()
        await render_problem(scope, body, headers)(scope, receive, send)
