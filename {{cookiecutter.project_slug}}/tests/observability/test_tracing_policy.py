"""OBS-TRACING in production: spans are exported only when configured, callers cannot decide
what is sampled, and a missing collector cannot hold up a shutdown."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid

import httpx2
import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from app.dev.services import ServiceUrls
from app.middleware.tracing import ServerSpanMiddleware
from app.observability.telemetry import SHUTDOWN_FLUSH_SECONDS, span_exporter, tracing_sampler
from app.settings import Settings
from tests.processes import PROJECT_ROOT, env_for, failed_start, free_port, start_app, wait_for_port

PRODUCTION = {
    "ENVIRONMENT": "production",
    "SECRET_KEY": secrets.token_urlsafe(32),
    "SUPPORT_URL": "https://help.acme.test/",
    "SESSION_SIGNING_KEYS": f"k1:{secrets.token_urlsafe(32)}",
    "CLAMD_ADDRESS": "tcp://127.0.0.1:3310",
}
TRACE_ID = uuid.uuid4().hex
COLLECTOR = "http://127.0.0.1:4318"
EXPORT_TIMEOUT_SECONDS = 30


def _without_otel(env: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in env.items() if not name.startswith("OTEL_")}


@pytest.fixture
def no_otel(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [name for name in os.environ if name.startswith("OTEL_")]:
        monkeypatch.delenv(name)
    return monkeypatch


def test_production_without_otel_variables_installs_no_tracer_provider(
    service_urls: ServiceUrls,
) -> None:
    """No OTEL_* set: production installs no provider, so no span is ever sent anywhere."""
    env = _without_otel({**env_for(service_urls), **PRODUCTION})
    script = (
        "from app.settings import load_settings\n"
        "from app.observability.telemetry import configure_tracing\n"
        "print(configure_tracing(load_settings()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "None"


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": COLLECTOR}, "OTLPSpanExporter"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{COLLECTOR}/v1/traces"}, "OTLPSpanExporter"),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, "OTLPSpanExporter"),
        ({"OTEL_TRACES_EXPORTER": "console"}, "ConsoleSpanExporter"),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": COLLECTOR}, None),
    ],
)
def test_an_exporter_exists_only_when_an_otel_variable_asks_for_one(
    no_otel: pytest.MonkeyPatch, variables: dict[str, str], expected: str | None
) -> None:
    """An endpoint or OTEL_TRACES_EXPORTER turns exporting on; `none` wins over an endpoint."""
    for name, value in variables.items():
        no_otel.setenv(name, value)
    exporter = span_exporter()
    assert (type(exporter).__name__ if exporter else None) == expected
    if exporter is not None:
        exporter.shutdown()


async def _trace_id_seen(request: Request) -> PlainTextResponse:
    return PlainTextResponse(format(trace.get_current_span().get_span_context().trace_id, "032x"))


@pytest.mark.parametrize(
    ("peer", "flag", "recorded"),
    [
        ("203.0.113.7", "01", False),  # an untrusted caller cannot force sampling
        ("10.1.2.3", "01", True),  # a trusted peer's decision is followed
        ("10.1.2.3", "00", False),
    ],
)
def test_only_trusted_peers_decide_sampling(
    no_otel: pytest.MonkeyPatch, peer: str, flag: str, recorded: bool
) -> None:
    """At a 0 % ratio, a sampled traceparent is recorded only from TRACING_TRUSTED_PEERS; every
    caller's trace id is continued either way."""
    no_otel.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    no_otel.setenv("OTEL_TRACES_SAMPLER_ARG", "0")
    settings = Settings(environment="test", tracing_trusted_peers="10.0.0.0/8")
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=tracing_sampler(settings), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = ServerSpanMiddleware(
        Starlette(routes=[Route("/search", _trace_id_seen)]),
        tracer=provider.get_tracer("tests"),
        trusted_peers=settings.tracing_trusted_peers,
    )
    client = TestClient(app, client=(peer, 50000))
    response = client.get("/search", headers={"traceparent": f"00-{TRACE_ID}-{'e' * 16}-{flag}"})
    assert response.text == TRACE_ID
    assert bool(exporter.get_finished_spans()) is recorded


def test_an_untrusted_caller_gets_the_local_sampling_decision(no_otel: pytest.MonkeyPatch) -> None:
    """An untrusted `-00` cannot switch tracing off: the local sampler (here always on) decides."""
    no_otel.setenv("OTEL_TRACES_SAMPLER", "parentbased_always_on")
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        sampler=tracing_sampler(Settings(environment="test")), shutdown_on_exit=False
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = ServerSpanMiddleware(
        Starlette(routes=[Route("/search", _trace_id_seen)]), tracer=provider.get_tracer("tests")
    )
    response = TestClient(app).get(
        "/search", headers={"traceparent": f"00-{TRACE_ID}-{'e' * 16}-00"}
    )
    assert response.text == TRACE_ID
    [span] = exporter.get_finished_spans()
    assert span.parent is not None
    assert span.parent.span_id == int("e" * 16, 16)


def test_shutdown_is_bounded_when_the_collector_never_answers(service_urls: ServiceUrls) -> None:
    """SIGTERM with a span queued for a collector that takes the connection and never answers:
    the export would wait out its 30 s timeout, the exit waits SHUTDOWN_FLUSH_SECONDS for it."""
    port = free_port()
    with socket.create_server(("127.0.0.1", 0)) as collector:  # listens, never accepts
        env = env_for(
            service_urls,
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{collector.getsockname()[1]}",
            OTEL_EXPORTER_OTLP_TIMEOUT=str(EXPORT_TIMEOUT_SECONDS),
            OTEL_BSP_SCHEDULE_DELAY="600000",  # the span waits in the queue until shutdown
        )
        process = start_app(["serve", "--port", str(port)], env)
        try:
            assert wait_for_port(port, process), failed_start(process)
            httpx2.get(f"http://127.0.0.1:{port}/api/v1/notes", timeout=5)
        finally:
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=60)
        exited_after = time.monotonic() - started
    # An unbounded flush holds the exit for the whole export timeout; the margin over the bound
    # is for a loaded CI machine, where the rest of the shutdown has taken over 2 s.
    assert SHUTDOWN_FLUSH_SECONDS <= exited_after < EXPORT_TIMEOUT_SECONDS / 2
