"""Per-layer cost of the middleware stack: `/hello` called in-process, one layer added at a time.

    cd <baked project> && PYTHONPATH=src:bench .venv/bin/python <template>/perf/layers.py

No server and no network for HTTP: each request is one direct ASGI call, sequential, so the CPU
time per request (`time.process_time`) is the stack's own cost, and the difference between two
rows is what the added layer costs. Wall time also counts the rate limiter's wait on Redis. Layers
are added in `app.middleware.stack` order, innermost first, with the production settings: JSON
logs (written to /dev/null here), 10 % parent-based sampling into a batch processor whose exporter
discards. A benchmark, not a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TextIO

from app.dev.services import embedded_redis
from app.observability.logging import configure_logging
from app.middleware.access_log import AccessLogMiddleware
from app.middleware.correlation import CorrelationIdMiddleware
from app.middleware.rate_limit import RateLimitMiddleware
from app.middleware.security_headers import SecurityHeadersMiddleware
from app.middleware.tracing import ServerSpanMiddleware
from app.middleware.unhandled_errors import UnhandledErrorMiddleware
from app.middleware.rate_limits import RateCounter
from app.cache.connections import LeanRedis
from app.observability.telemetry import PRODUCTION_SAMPLE_RATIO
from fastapi import FastAPI
from hello import discard, hello_app, hello_scope, receive_nothing
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio
from starlette.types import ASGIApp

REQUESTS = int(os.environ.get("BENCH_LAYER_REQUESTS", "3000"))
REPEATS = 5
SUPPORT = "https://support.bench.invalid/"
Wrap = Callable[[ASGIApp], ASGIApp]


class _Discard(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _layers(redis_url: str) -> list[tuple[str, Wrap]]:
    counter = RateCounter(LeanRedis(redis_url), f"bench_layers_{os.getpid()}:")
    provider = TracerProvider(sampler=ParentBasedTraceIdRatio(PRODUCTION_SAMPLE_RATIO))
    provider.add_span_processor(BatchSpanProcessor(_Discard()))
    limits = "999999999/minute"
    return [
        ("+ unhandled-error middleware", lambda a: UnhandledErrorMiddleware(a, SUPPORT)),
        (
            "+ rate limit (1 Redis round trip)",
            lambda a: RateLimitMiddleware(a, counter, limits, limits, [], SUPPORT),
        ),
        ("+ security headers", lambda a: SecurityHeadersMiddleware(a, hsts=True)),
        ("+ access log and RED metrics", AccessLogMiddleware),
        ("+ correlation id", CorrelationIdMiddleware),
        (
            "+ tracing, 10 % sampled",
            lambda a: ServerSpanMiddleware(a, tracer=provider.get_tracer("bench")),
        ),
    ]


async def _timed(app: ASGIApp, fastapi_app: FastAPI) -> tuple[float, float]:
    """CPU and wall seconds per request over REQUESTS sequential calls."""

    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(REQUESTS):
        await app({**hello_scope(), "app": fastapi_app}, receive_nothing, discard)
    return (time.process_time() - cpu) / REQUESTS, (time.perf_counter() - wall) / REQUESTS


async def _measure(redis_url: str, out: TextIO) -> None:
    fastapi_app = hello_app()
    app: ASGIApp = fastapi_app
    rows = [("bare FastAPI /hello", app)]
    for name, wrap in _layers(redis_url):
        app = wrap(app)
        rows.append((name, app))
    previous = 0.0
    header = f"{'layers (cumulative, inner to outer)':<36} {'cpu us/req':>10} {'+cpu':>7}"
    print(f"{header} {'wall us':>8}", file=out, flush=True)
    for name, stack in rows:
        await _timed(stack, fastapi_app)  # warm-up
        runs = [await _timed(stack, fastapi_app) for _ in range(REPEATS)]
        cpu = statistics.median(run[0] for run in runs) * 1e6
        wall = statistics.median(run[1] for run in runs) * 1e6
        print(f"{name:<36} {cpu:>10.1f} {cpu - previous:>+7.1f} {wall:>8.1f}", file=out, flush=True)
        previous = cpu


@contextmanager
def _quiet_logs() -> Iterator[None]:
    with Path(os.devnull).open("w") as sink, contextlib.redirect_stdout(sink):
        yield


def main() -> int:
    configure_logging("INFO", "json")
    root = Path.cwd() / ".devservices" / "bench"  # run from the baked project (README.md)
    out = sys.stdout
    print(f"{REQUESTS} sequential in-process requests per row, median of {REPEATS}", flush=True)
    with ExitStack() as stack:
        redis_url = os.environ.get("TEST_REDIS_URL") or stack.enter_context(embedded_redis(root))
        with _quiet_logs():
            asyncio.run(_measure(redis_url, out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
