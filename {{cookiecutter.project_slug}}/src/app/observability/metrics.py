"""Prometheus metrics of the API process: RED per route template, in-flight requests, the
database pool (USE), and the decisions of the production stack; served at `GET /metrics`.

Labels are small fixed sets: route templates (never raw paths or ids), methods, status codes.
With several uvicorn workers, set PROMETHEUS_MULTIPROC_DIR to an empty directory shared by them:
every worker then writes its samples there and any of them serves the sum (docs/observability.md).

Where: on METRICS_PORT when one is in effect (production's default), by a server of its own, and
then not on the API port; else on the API port, behind METRICS_TOKEN when that is set. So the
exposition (versions, traffic per route, pool sizes) is never public on the API port in production.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.responses import Response

from app.http.errors import UnauthorizedError
from app.http.routes import mount_router
from app.settings import ConfigError, Settings

# GET /metrics leaves the API port in production even when nothing is configured.
DEFAULT_PRODUCTION_METRICS_PORT = 9100
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer, by method and route template.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
HTTP_IN_FLIGHT = Gauge(
    "http_requests_in_flight", "Requests being served right now.", multiprocess_mode="livesum"
)
RATE_LIMIT_DECISIONS = Counter(
    "rate_limit_decisions_total",
    "Rate-limit checks by decision: allowed, limited, or fail_open (Redis unavailable).",
    ["decision"],
)
IDEMPOTENCY_OUTCOMES = Counter(
    "idempotency_requests_total",
    "Requests carrying an Idempotency-Key by outcome: new, replayed, in_flight, key_reused, "
    "resource_deleted.",
    ["outcome"],
)
OUTBOX_RELAYED = Counter("outbox_relayed_total", "Outbox messages published to the broker.")
CACHE_REQUESTS = Counter(
    "cache_requests_total",
    "Cache reads by namespace and outcome: hit, miss, early_refresh, bypass (Redis unavailable), "
    "invalidation_failed.",
    ["namespace", "outcome"],
)
OUTBOUND_REQUESTS = Counter(
    "outbound_requests_total",
    "Calls to other services by dependency and outcome: ok, error_status, transport_error, "
    "breaker_open.",
    ["dependency", "outcome"],
)
OUTBOUND_RETRIES = Counter(
    "outbound_retries_total", "Retried attempts of calls to other services.", ["dependency"]
)


# The labelled series of each (method, route, status) seen, so a request skips `labels()`, which
# validates and locks on every call. Bounded like the series themselves: templates, not paths.
_REQUEST_SERIES: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Record one finished request (called by the access-log middleware: one clock, one place)."""
    series = _REQUEST_SERIES.get((method, route, status))
    if series is None:
        series = (
            HTTP_REQUESTS.labels(method, route, str(status)),
            HTTP_DURATION.labels(method, route),
        )
        _REQUEST_SERIES[(method, route, status)] = series
    series[0].inc()
    series[1].observe(seconds)


class _PoolCollector(Collector):
    """Database pool usage, read at scrape time from the pools this process serves with."""

    def __init__(self) -> None:
        self.pools: list[Any] = []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        in_use = sum(pool.checkedout() for pool in self.pools)
        size = sum(pool.size() for pool in self.pools)
        yield GaugeMetricFamily(
            "db_pool_connections_in_use", "Connections checked out of the pool.", in_use
        )
        yield GaugeMetricFamily("db_pool_size", "Connections the pool keeps open.", size)


POOLS = _PoolCollector()
MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR" in os.environ
if not MULTIPROCESS:
    REGISTRY.register(POOLS)


def _registry() -> CollectorRegistry:
    """This process's registry, or in multi-process mode one summing every process's files."""
    if not MULTIPROCESS:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """The Prometheus text exposition: this process's, or every process's in multi-process mode."""
    token: bytes | None = getattr(request.app.state, "metrics_token", None)
    if token is not None:
        sent = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(sent, b"Bearer " + token):
            raise UnauthorizedError("GET /metrics needs the METRICS_TOKEN as a bearer token.")
    registry = _registry()
    if MULTIPROCESS:
        registry.register(POOLS)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def metrics_port(settings: Settings) -> int | None:
    """The port of the separate metrics server, if any: METRICS_PORT, or 9100 in production
    unless METRICS_TOKEN keeps /metrics on the API port."""
    if settings.metrics_port is not None or not settings.is_production or settings.metrics_token:
        return settings.metrics_port
    return DEFAULT_PRODUCTION_METRICS_PORT


def install_metrics_endpoint(app: FastAPI, settings: Settings) -> None:
    """GET /metrics on the API port, unless a metrics port serves it (`serve_metrics_apart`)."""
    if metrics_port(settings) is not None:
        return
    token = settings.metrics_token
    app.state.metrics_token = token.get_secret_value().encode() if token else None
    mount_router(app, router)


def serve_metrics_apart(settings: Settings, host: str, api_port: int) -> None:
    """Serve the exposition on `metrics_port` from a thread of this process, the uvicorn parent;
    nothing when there is none.

    With several workers it sums their files; the pool gauges stay with the worker processes
    (one process per container keeps them). Raises ConfigError when the port cannot be used.
    """
    port = metrics_port(settings)
    if port is None:
        return
    if port == api_port:
        raise ConfigError({"METRICS_PORT": "must differ from the API port"})
    try:
        # One process: REGISTRY, with POOLS, which the lifespan fills in this same process.
        start_http_server(port, addr=host, registry=_registry())
    except OSError as error:
        raise ConfigError({"METRICS_PORT": f"cannot listen there ({error.strerror})"}) from None
