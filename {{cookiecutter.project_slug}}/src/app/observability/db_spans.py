"""Statement spans only where they can be recorded: none under a parent the sampler dropped.

The SQLAlchemy instrumentation does its work for every statement before it asks whether the span
records: the connection's attributes from the URL, the database name, the operation name from the
statement's text, a span from the sampler, the span made current. With 10 % sampling, nine
requests in ten pay all of that for each statement and export nothing. When the sampler never
records a child of an unsampled local parent (a parent-based sampler, the production default),
such a statement's span could only be a non-recording one, and skipping it changes no trace.
The sampler is asked, not assumed: with one that may record such a child (`always_on` ignores
the parent), every statement keeps its span.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.sdk.trace.sampling import Decision, Sampler
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

_PROBE = SpanContext(trace_id=1, span_id=1, is_remote=False, trace_flags=TraceFlags(0))


def drops_children_of_unsampled(sampler: Sampler) -> bool:
    """Whether `sampler` drops a span whose local parent was not sampled."""
    parent = trace.set_span_in_context(NonRecordingSpan(_PROBE))
    result = sampler.should_sample(parent, _PROBE.trace_id, "statement", trace.SpanKind.CLIENT)
    return result.decision is Decision.DROP


def _under_unsampled_parent() -> bool:
    parent = trace.get_current_span().get_span_context()
    return parent.is_valid and not parent.trace_flags.sampled


def skip_statement_spans_under_unsampled_parents() -> None:
    """Wrap the instrumentation's statement hook (before the engine is made: it binds the hook)."""
    original = EngineTracer._before_cur_exec
    if getattr(original, "skips_unsampled", False):
        return

    def before_cursor_execute(
        tracer: EngineTracer, conn: Any, cursor: Any, statement: Any, params: Any, *rest: Any
    ) -> tuple[Any, Any]:
        if _under_unsampled_parent():
            return statement, params  # no `_otel_span` on the context: the after-hook skips too
        result: tuple[Any, Any] = original(  # type: ignore[no-untyped-call]
            tracer, conn, cursor, statement, params, *rest
        )
        return result

    before_cursor_execute.skips_unsampled = True  # type: ignore[attr-defined]
    EngineTracer._before_cur_exec = before_cursor_execute  # type: ignore[method-assign]
