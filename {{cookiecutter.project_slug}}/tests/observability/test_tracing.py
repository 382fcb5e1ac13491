"""OBS-TRACING: one request's server, database and Redis spans share the caller's trace."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.dev.services import ServiceUrls
from app.main import create_app
from app.observability.telemetry import configure_tracing
from app.outbound.client import OutboundClient, OutboundDependency
from app.settings import Settings
from app.tenants.service import NewTenant
from tests.notes.test_notes_api import fresh_key
from tests.outbound.flaky_server import flaky_server

TRACE_ID = uuid.uuid4().hex
TRACEPARENT = f"00-{TRACE_ID}-{'b' * 16}-01"
LogLines = Callable[[], list[dict[str, Any]]]


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = configure_tracing(Settings(environment="test"), SimpleSpanProcessor(exporter))
    assert provider is not None
    return exporter


def test_a_request_continues_the_callers_trace_through_db_and_redis(
    spans: InMemorySpanExporter,
    make_settings: Callable[..., Settings],
    new_tenant: Callable[[], NewTenant],
    service_urls: ServiceUrls,
    log_lines: LogLines,
) -> None:
    """Server, SQL and Redis spans of a POST share the incoming traceparent's trace id."""
    tenant = new_tenant()
    log_lines()
    with TestClient(create_app(make_settings())) as client:
        response = client.post(
            "/api/v1/notes",
            json={"title": "traced"},
            headers={**fresh_key(tenant), "traceparent": TRACEPARENT},
        )
    assert response.status_code == 201
    ours = [s for s in spans.get_finished_spans() if format(s.context.trace_id, "032x") == TRACE_ID]
    kinds = {
        str(s.attributes.get("db.system") or s.attributes.get("db.system.name") or "")
        for s in ours
        if s.attributes
    }
    assert any(s.name.startswith("POST /api/v1/notes") for s in ours), [s.name for s in ours]
    server = next(s for s in ours if s.kind is SpanKind.SERVER)
    assert (server.name, (server.attributes or {}).get("http.route")) == (
        "POST /api/v1/notes",
        "/api/v1/notes",
    )
    assert "postgresql" in kinds
    assert "redis" in kinds
    access = next(line for line in log_lines() if line.get("event") == "request")
    assert access["trace_id"] == TRACE_ID
    assert len(access["span_id"]) == 16


async def test_the_outbox_row_carries_the_trace_to_the_worker(
    spans: InMemorySpanExporter,
    make_settings: Callable[..., Settings],
    new_tenant: Callable[[], NewTenant],
    service_urls: ServiceUrls,
) -> None:
    """A task queued by a traced request stores that trace's context for the worker."""
    tenant = new_tenant()
    trace_id = uuid.uuid4().hex
    app = create_app(make_settings())
    with TestClient(app) as client:
        client.post(
            "/api/v1/notes",
            json={"title": "queued"},
            headers={**fresh_key(tenant), "traceparent": f"00-{trace_id}-{'c' * 16}-01"},
        )
    engine = create_async_engine(service_urls.owner_database_url)
    try:
        async with engine.connect() as conn:
            header = await conn.scalar(
                text("SELECT headers->>'traceparent' FROM outbox WHERE tenant_id = :t"),
                {"t": tenant.tenant_id},
            )
    finally:
        await engine.dispose()
    assert header is not None
    assert header.split("-")[1] == trace_id


async def test_an_outbound_call_is_a_client_span_that_carries_the_trace(
    spans: InMemorySpanExporter,
) -> None:
    """The outbound client sends `traceparent`, so the callee continues our trace."""
    with flaky_server() as server:
        client = OutboundClient(OutboundDependency("partner", server.url))
        with trace.get_tracer("tests").start_as_current_span("handler") as parent:
            await client.request("GET", "/orders")
        await client.aclose()
    trace_id = format(parent.get_span_context().trace_id, "032x")
    sent = {name.lower(): value for name, value in server.hits[0][2].items()}
    assert sent["traceparent"].split("-")[1] == trace_id
    client_spans = [
        s
        for s in spans.get_finished_spans()
        if s.kind is SpanKind.CLIENT and format(s.context.trace_id, "032x") == trace_id
    ]
    assert len(client_spans) == 1
    attributes = client_spans[0].attributes or {}
    # The semantic-convention name depends on OTEL_SEMCONV_STABILITY_OPT_IN; either will do.
    assert 200 in (attributes.get("http.status_code"), attributes.get("http.response.status_code"))


def test_server_spans_are_named_by_route_template_never_by_raw_path(
    spans: InMemorySpanExporter, make_settings: Callable[..., Settings]
) -> None:
    """An id in the URL never reaches a span name: trace backends list operations by name."""
    note_id = str(uuid.uuid4())
    with TestClient(create_app(make_settings())) as client:
        client.get(f"/api/v1/notes/{note_id}", headers={"traceparent": TRACEPARENT})
    names = [s.name for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert "GET /api/v1/notes/{note_id}" in names
    assert not [name for name in names if note_id in name]


def test_a_request_that_fails_marks_its_server_span_as_an_error(
    spans: InMemorySpanExporter, make_settings: Callable[..., Settings]
) -> None:
    """A 500, and a failure after the response has started, leave an ERROR server span."""
    app = create_app(make_settings())

    @app.get("/test-fails-before")
    async def fails_before() -> None:
        raise RuntimeError("before the response")

    @app.get("/test-fails-midway")
    async def fails_midway() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"partial"
            raise RuntimeError("after the headers")

        return StreamingResponse(body())

    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/test-fails-before").status_code == 500
        with contextlib.suppress(Exception):  # the connection breaks mid-body
            client.get("/test-fails-midway")
    server = {s.name: s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER}
    before, midway = server["GET /test-fails-before"], server["GET /test-fails-midway"]
    assert before.status.status_code is StatusCode.ERROR
    assert midway.status.status_code is StatusCode.ERROR
    assert [event.name for event in midway.events] == ["exception"]
    assert midway.events[0].attributes is not None
    assert midway.events[0].attributes["exception.type"] == "RuntimeError"


def test_no_server_span_attribute_holds_the_query_string(
    spans: InMemorySpanExporter, make_settings: Callable[..., Settings]
) -> None:
    """What a user searched for (`?q=...`) is in no attribute of the request's server span."""
    trace_id = uuid.uuid4().hex
    with TestClient(create_app(make_settings())) as client:
        client.get(
            "/api/v1/notes?q=secret-term&limit=5",
            headers={"traceparent": f"00-{trace_id}-{'d' * 16}-01"},
        )
    server = [
        s
        for s in spans.get_finished_spans()
        if s.kind is SpanKind.SERVER and format(s.context.trace_id, "032x") == trace_id
    ]
    assert len(server) == 1
    attributes = server[0].attributes or {}
    assert attributes.get("http.target", attributes.get("url.path")) == "/api/v1/notes"
    assert not [(k, v) for k, v in attributes.items() if "secret-term" in str(v)]


async def test_no_client_span_attribute_holds_the_query_string(
    spans: InMemorySpanExporter,
) -> None:
    """An outbound call's client span records its URL without the query string."""
    with flaky_server() as server:
        client = OutboundClient(OutboundDependency("partner", server.url))
        with trace.get_tracer("tests").start_as_current_span("handler") as parent:
            await client.request("GET", "/orders?q=secret-term")
        await client.aclose()
    client_span = next(
        s
        for s in spans.get_finished_spans()
        if s.kind is SpanKind.CLIENT and s.context.trace_id == parent.get_span_context().trace_id
    )
    attributes = client_span.attributes or {}
    assert attributes.get("http.url", attributes.get("url.full")) == f"{server.url}/orders"
    assert not [(k, v) for k, v in attributes.items() if "secret-term" in str(v)]
