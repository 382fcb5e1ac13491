"""The server span of each HTTP request, paying for its attributes only when it is sampled.

Replaces OpenTelemetry's ASGI middleware, which builds every semantic-convention attribute (URL
parsing, a scan of the headers per attribute), wraps `send` and records no-op metrics before it
knows whether the span is sampled: about 60 µs of CPU per request, 90 % of them thrown away at
the production sampling ratio (docs/performance.md). Here the span starts first, with its name
only (the ratio and parent-based samplers decide on the trace id and parent alone); the request
attributes (`collect_request_attributes`, the same function) and the response status
(`set_status_code`) are added only when it records. An unsampled request still gets a valid,
unsampled span context: log lines carry its trace id, and outgoing calls propagate it.

The incoming `traceparent`/`baggage` go through the globally configured propagator, as before.
A caller outside `trusted_peers` (TRACING_TRUSTED_PEERS: its TCP address, never a forwarded one)
keeps its trace id, but its sampled flag is ignored: the context is marked for the sampler
(app.observability.telemetry.LocalDecisionForUntrusted), so a client cannot decide what we record
and export.
The query string never reaches an attribute: it holds what users search for.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Sequence

from opentelemetry import context, propagate, trace
from opentelemetry.instrumentation.asgi import collect_request_attributes, set_status_code
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.middleware.access_log import route_template
from app.observability.telemetry import UNTRUSTED_PARENT
from app.settings import IPNetwork

_PROPAGATED = (b"traceparent", b"tracestate", b"baggage")


class ServerSpanMiddleware:
    """One SERVER span per HTTP request, named `METHOD /route/{template}` (never the raw path:
    ids in span names explode a trace backend's operation list); `excluded_paths` get none."""

    def __init__(
        self,
        app: ASGIApp,
        excluded_paths: Collection[str] = (),
        tracer: trace.Tracer | None = None,
        trusted_peers: Sequence[IPNetwork] = (),
    ) -> None:
        self.app = app
        self.excluded_paths = frozenset(excluded_paths)
        self._tracer = tracer
        self.trusted_peers = tuple(trusted_peers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.excluded_paths:
            await self.app(scope, receive, send)
            return
        if self._tracer is None:  # at the first request: the provider is installed by then
            self._tracer = trace.get_tracer(__name__)
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in _PROPAGATED
        }
        parent = propagate.extract(carrier) if carrier else None
        decide_in = parent
        if parent is not None and not self._trusted(scope):
            decide_in = context.set_value(UNTRUSTED_PARENT, True, parent)
        # Named by method until the router has matched: the template is known only afterwards.
        span = self._tracer.start_span(
            scope["method"], context=decide_in, kind=trace.SpanKind.SERVER
        )
        # attach/detach rather than `trace.use_span`, a generator-based context manager that
        # costs more than the rest of an unsampled request's tracing.
        token = context.attach(trace.set_span_in_context(span, parent))
        try:
            if span.is_recording():
                await self._traced(span, scope, receive, send)
            else:
                await self.app(scope, receive, send)
        finally:
            context.detach(token)
            span.end()

    def _trusted(self, scope: Scope) -> bool:
        """Whether the TCP peer may decide sampling for us (asked only when it sent a context)."""
        peer = scope["client"][0] if scope.get("client") else None
        if not self.trusted_peers or peer is None:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.trusted_peers)

    async def _traced(self, span: trace.Span, scope: Scope, receive: Receive, send: Send) -> None:
        # Without the query string: `http.url`, `http.target` and `url.query` would hold it.
        bare = {**scope, "query_string": b""}
        # The instrumentation's helpers are unannotated.
        span.set_attributes(collect_request_attributes(bare))  # type: ignore[no-untyped-call]

        async def send_with_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                set_status_code(span, message["status"])  # type: ignore[no-untyped-call]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        except BaseException as error:
            span.record_exception(error)
            span.set_status(trace.StatusCode.ERROR, type(error).__name__)
            raise
        finally:
            route = route_template(scope)
            span.update_name(f"{scope['method']} {route}")
            span.set_attribute("http.route", route)
