"""Statement spans are not even started under a parent the sampler dropped; under a sampled one
every statement still has its span (app.observability.db_spans)."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBasedTraceIdRatio
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from sqlalchemy import event, text

from app.db.engine import create_engine
from app.dev.services import ServiceUrls
from app.observability.db_spans import drops_children_of_unsampled
from app.observability.telemetry import LocalDecisionForUntrusted, configure_tracing
from app.settings import Settings


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    assert configure_tracing(Settings(environment="test"), SimpleSpanProcessor(exporter))
    return exporter


def test_the_services_samplers_drop_children_of_unsampled_parents_and_always_on_does_not() -> None:
    assert drops_children_of_unsampled(LocalDecisionForUntrusted(ParentBasedTraceIdRatio(0.1)))
    assert not drops_children_of_unsampled(ALWAYS_ON)


def _parent(sampled: bool) -> Any:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else 0)
    return NonRecordingSpan(SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=flags))


async def test_statements_start_spans_only_under_a_sampled_parent(
    spans: InMemorySpanExporter, service_urls: ServiceUrls
) -> None:
    engine = create_engine(service_urls.runtime_database_url)  # traced: made after tracing
    started: list[bool] = []

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def record(*args: Any) -> None:
        started.append(getattr(args[4], "_otel_span", None) is not None)  # args[4]: the context

    try:
        for sampled in (False, True):
            with trace.use_span(_parent(sampled)):
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
    assert started == [False, True]
