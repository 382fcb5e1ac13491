"""OpenTelemetry: tracer provider from the standard OTEL_* variables, and the instrumentors.

Exporter: only when configured, in every environment: `OTEL_TRACES_EXPORTER` = otlp | console |
none, or an OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`),
which means otlp. Nothing configured: no provider, no spans, no connection attempts.
`OTEL_EXPORTER_OTLP_*` and `OTEL_BSP_*` are read by the SDK itself. Sampler:
`OTEL_TRACES_SAMPLER`/`_ARG`, defaulting in production to parent-based 10 % ratio sampling; a
remote parent's sampled flag counts only from TRACING_TRUSTED_PEERS (`LocalDecisionForUntrusted`).
Spans go through a batch processor, flushed on shutdown for at most `SHUTDOWN_FLUSH_SECONDS`.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable, Sequence

from opentelemetry import context, trace
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

from app.observability.db_spans import (
    drops_children_of_unsampled,
    skip_statement_spans_under_unsampled_parents,
)
from app.settings import Settings

PRODUCTION_SAMPLE_RATIO = 0.1
# What a missing collector may add to a shutdown: the OTLP exporter retries a refused
# connection with back-off for up to OTEL_EXPORTER_OTLP_TIMEOUT (10 s), about 6.5 s in all.
SHUTDOWN_FLUSH_SECONDS = 2.0
_URL_ATTRIBUTES = ("http.url", "url.full")
_OTLP_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
# Set by the server span middleware on the context of a request whose caller is not trusted.
UNTRUSTED_PARENT = context.create_key("untrusted-remote-parent")
_provider: TracerProvider | None = None


def span_exporter() -> SpanExporter | None:
    """The exporter the environment asks for; None unless an OTEL_* variable asks for one."""
    configured = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not configured and any(os.environ.get(name) for name in _OTLP_ENDPOINTS):
        configured = "otlp"
    if configured == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if configured == "console":
        return ConsoleSpanExporter()
    return None


class LocalDecisionForUntrusted(Sampler):
    """Samples a span whose remote parent came from an untrusted caller as if it had no parent.

    The trace id is still the caller's (the SDK takes it from the parent), so the trace goes on;
    only the caller's sampled flag is ignored: a client cannot make us record and export its
    requests (nor stop us). Local parents, and remote ones from trusted peers, are `delegate`'s.
    """

    def __init__(self, delegate: Sampler) -> None:
        self.delegate = delegate

    def should_sample(
        self,
        parent_context: context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        if parent_context is not None and context.get_value(UNTRUSTED_PARENT, parent_context):
            parent = trace.get_current_span(parent_context).get_span_context()
            if parent.is_remote:
                parent_context = context.Context()  # no parent: the root sampler decides
        return self.delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"LocalDecisionForUntrusted{{{self.delegate.get_description()}}}"


def tracing_sampler(settings: Settings) -> Sampler:
    """OTEL_TRACES_SAMPLER's sampler (production default: 10 %), deciding for untrusted callers."""
    if "OTEL_TRACES_SAMPLER" in os.environ or not settings.is_production:
        # The SDK parses OTEL_TRACES_SAMPLER/_ARG (default: parent-based, always on).
        delegate = TracerProvider(shutdown_on_exit=False).sampler
    else:
        delegate = ParentBasedTraceIdRatio(PRODUCTION_SAMPLE_RATIO)
    return LocalDecisionForUntrusted(delegate)


def configure_tracing(
    settings: Settings, processor: SpanProcessor | None = None
) -> TracerProvider | None:
    """Install the global tracer provider once; `processor` replaces the exporter (tests).

    The provider is global and set once per process: a later call with a processor attaches it
    to the provider already installed, so each caller sees the spans from then on.
    """
    global _provider
    if _provider is not None:
        if processor is not None:
            _provider.add_span_processor(processor)
        return _provider
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    exporter = span_exporter() if processor is None else None
    if processor is None and exporter is None:
        return None
    name = os.environ.get("OTEL_SERVICE_NAME", settings.service_name)
    # The SDK's own exit hook would wait for the exporter's retries; ours is bounded.
    provider = TracerProvider(
        resource=Resource.create({"service.name": name}),
        sampler=tracing_sampler(settings),
        shutdown_on_exit=False,
    )
    provider.add_span_processor(processor or BatchSpanProcessor(exporter))  # type: ignore[arg-type]
    trace.set_tracer_provider(provider)
    _instrument(provider)
    _provider = provider
    atexit.register(_bounded, provider.shutdown)
    return provider


def _instrument(provider: TracerProvider) -> None:
    celery = CeleryInstrumentor()  # type: ignore[no-untyped-call]  # its __init__ is unannotated
    for instrumentor in (RedisInstrumentor(), celery):
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=provider)
    # Wraps create_async_engine, so engines made afterwards are traced. Its declared range stops
    # below SQLAlchemy 2.1; tests/observability/test_tracing.py proves the spans on the version
    # installed.
    if not SQLAlchemyInstrumentor().is_instrumented_by_opentelemetry:
        SQLAlchemyInstrumentor().instrument(tracer_provider=provider, skip_dep_check=True)
    if drops_children_of_unsampled(provider.sampler):
        skip_statement_spans_under_unsampled_parents()


def _bounded(step: Callable[[], object]) -> None:
    """Run `step` (a flush or shutdown) for at most SHUTDOWN_FLUSH_SECONDS.

    The SDK ignores the timeouts of flush and shutdown while its exporter backs off, so the
    step runs in a daemon thread that the exiting process leaves behind if it overruns.
    """
    worker = threading.Thread(target=step, name="tracing-flush", daemon=True)
    worker.start()
    worker.join(SHUTDOWN_FLUSH_SECONDS)


async def drop_query_from_client_span(span: trace.Span, _request: object) -> None:
    """Request hook of the outbound client's transport: its span's URL loses the query string.

    The httpx instrumentation redacts credentials and a few signature parameters only; a query
    can carry anything a user typed. Both semantic-convention names are covered.
    """
    attributes = getattr(span, "attributes", None) or {}
    for name in _URL_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, str) and "?" in value:
            span.set_attribute(name, value.partition("?")[0])


def tracing_enabled() -> bool:
    return _provider is not None


def shutdown_tracing() -> None:
    """Flush pending spans (the batch processor holds them), waiting a bounded time.

    A flush, not a shutdown: the provider is global to the process, and another app in it (tests)
    goes on using it. The process's exit hook shuts it down, bounded too.
    """
    if _provider is not None:
        _bounded(_provider.force_flush)
