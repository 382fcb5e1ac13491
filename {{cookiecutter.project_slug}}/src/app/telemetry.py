"""OpenTelemetry: tracer provider from the standard OTEL_* variables, and the instrumentors.

Exporter: `OTEL_TRACES_EXPORTER` = otlp | console | none (default: otlp in production, none
elsewhere); `OTEL_EXPORTER_OTLP_*` and `OTEL_BSP_*` are read by the SDK itself. Sampler:
`OTEL_TRACES_SAMPLER`/`_ARG`, defaulting in production to parent-based 10 % ratio sampling.
Spans go through a batch processor and are flushed on shutdown.
"""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio

from app.settings import Settings

PRODUCTION_SAMPLE_RATIO = 0.1
_provider: TracerProvider | None = None


def _exporter(settings: Settings) -> SpanExporter | None:
    default = "otlp" if settings.is_production else "none"
    name = os.environ.get("OTEL_TRACES_EXPORTER", default).strip().lower()
    if name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if name == "console":
        return ConsoleSpanExporter()
    return None


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
    exporter = _exporter(settings)
    if processor is None and exporter is None:
        return None
    sampler = None
    if settings.is_production and "OTEL_TRACES_SAMPLER" not in os.environ:
        sampler = ParentBasedTraceIdRatio(PRODUCTION_SAMPLE_RATIO)
    name = os.environ.get("OTEL_SERVICE_NAME", settings.service_name)
    provider = TracerProvider(resource=Resource.create({"service.name": name}), sampler=sampler)
    provider.add_span_processor(processor or BatchSpanProcessor(exporter))  # type: ignore[arg-type]
    trace.set_tracer_provider(provider)
    celery = CeleryInstrumentor()  # type: ignore[no-untyped-call]  # its __init__ is unannotated
    for instrumentor in (RedisInstrumentor(), celery):
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=provider)
    # Wraps create_async_engine, so engines made afterwards are traced. Its declared range stops
    # below SQLAlchemy 2.1; tests/test_tracing.py proves the spans on the version installed.
    if not SQLAlchemyInstrumentor().is_instrumented_by_opentelemetry:
        SQLAlchemyInstrumentor().instrument(tracer_provider=provider, skip_dep_check=True)
    _provider = provider
    return provider


def tracing_enabled() -> bool:
    return _provider is not None


def shutdown_tracing() -> None:
    """Flush pending spans (the batch processor holds them) before the process exits."""
    if _provider is not None:
        _provider.force_flush()
