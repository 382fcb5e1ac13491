"""The middleware order. Each position has a reason; keep them when adding one.

`add_middleware` puts each new middleware outside the ones before it, so this list reads from the
innermost (next to the routes) to the outermost (first to see a request).
"""

from __future__ import annotations

from fastapi import FastAPI
from redis.asyncio import Redis

from app.cache.connections import LeanRedis
from app.middleware.access_log import AccessLogMiddleware
from app.middleware.body_limit import BodyLimitMiddleware
from app.middleware.concurrency import ConcurrencyLimitMiddleware
from app.middleware.conditional_get import ConditionalGetMiddleware
from app.middleware.correlation import CorrelationIdMiddleware
from app.middleware.csrf import CsrfMiddleware
from app.middleware.json_body import JsonBodyMiddleware
from app.middleware.rate_limit import RateLimitMiddleware
from app.middleware.rate_limits import RateCounter
from app.middleware.security_headers import SecurityHeadersMiddleware
from app.middleware.tracing import ServerSpanMiddleware
from app.middleware.unhandled_errors import UnhandledErrorMiddleware
from app.observability.telemetry import tracing_enabled
from app.settings import Settings


def install_middleware(app: FastAPI, settings: Settings, redis: Redis | None) -> None:
    """Install the production middleware stack on `app`."""
    # Innermost: `If-None-Match` is compared with the ETag the route itself answered with.
    app.add_middleware(ConditionalGetMiddleware)
    # Catches whatever escaped the exception handlers, so that 500 still passes through the
    # security headers, the access log and the correlation id below.
    app.add_middleware(UnhandledErrorMiddleware, support_url=str(settings.support_url))
    # 415 and duplicate JSON keys inside the rate limit, so a limited client's body is never
    # collected and parsed; inside the body limit, which bounds what it collects.
    app.add_middleware(JsonBodyMiddleware, support_url=str(settings.support_url))
    # Rate limits before any route work (authentication included) but inside the headers and
    # the log, so a 429 is logged, correlated and carries the security headers. No Redis
    # configured (only possible outside `serve`): nothing to count with.
    # The counter has its own lean connection (app.cache.connections); the lifespan closes it.
    app.state.rate_counter = None
    if redis is not None and settings.redis_url is not None:
        lean = LeanRedis(settings.redis_url.get_secret_value())
        counter = RateCounter(lean, settings.key_prefix, tracing=tracing_enabled())
        app.state.rate_counter = counter
        app.add_middleware(
            RateLimitMiddleware,
            counter=counter,
            per_ip=settings.rate_limit_per_ip,
            per_principal=settings.rate_limit_per_principal,
            trusted_proxies=settings.trusted_proxies,
            ipv6_prefix=settings.rate_limit_ipv6_prefix,
            support_url=str(settings.support_url),
            session_keys=settings.signing_keys,
        )
    # CSRF before the route and its dependencies (the idempotency record), so a forged write
    # leaves nothing behind; outside the rate limit, so it spends no Redis round trip and none of
    # its victim's quota; inside the body limit and the layers outside it, so its 403 is logged.
    app.add_middleware(
        CsrfMiddleware,
        allowed_origins=settings.allowed_origins,
        public_base_url=str(settings.public_base_url) if settings.public_base_url else None,
        support_url=str(settings.support_url),
    )
    # Body size and time outside the rate limit: an announced oversized body costs no Redis
    # round trip, and every layer inside reads the body through its counting `receive`.
    app.add_middleware(
        BodyLimitMiddleware,
        max_body_bytes=settings.max_request_body_bytes,
        body_timeout=settings.request_body_timeout,
        support_url=str(settings.support_url),
    )
    # Shed load before any other work; inside the headers and the log, so a 503 is complete.
    app.add_middleware(
        ConcurrencyLimitMiddleware,
        limit=settings.max_concurrent_requests,
        support_url=str(settings.support_url),
    )
    # Security headers on every response: the 500 above, the router's 404/405, problem pages.
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.is_production)
    # The access log sits inside correlation, so its line carries the request id.
    app.add_middleware(AccessLogMiddleware)
    # The request id exists before anything else logs or answers.
    app.add_middleware(CorrelationIdMiddleware)
    # Outermost: the server span covers the whole stack, and every log line inside it (the
    # access log included) carries its trace and span ids. Probes and scrapes are not traced.
    # Our own lean middleware, not OpenTelemetry's: an unsampled request (90 % in production)
    # skips the attribute work, and there is no internal span per ASGI message (performance.md).
    if tracing_enabled():
        app.add_middleware(
            ServerSpanMiddleware,
            excluded_paths=("/health/live", "/health/ready", "/metrics"),
            trusted_peers=settings.tracing_trusted_peers,
        )
