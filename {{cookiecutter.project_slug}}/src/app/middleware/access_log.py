"""One access log line and one set of RED samples per request: method, route template, status
and duration, measured once for both."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Awaitable
from typing import Any

from fastapi.routing import iter_route_contexts
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.logging import access_logger
from app.observability.metrics import HTTP_IN_FLIGHT, observe_request


def route_template(scope: Scope) -> str:
    """The matched route's path template (`/api/v1/notes/{note_id}`), never the raw path.

    Raw paths carry ids, so they would explode log and metric cardinality.
    """
    route = scope.get("route")
    path: str | None = getattr(route, "path", None)
    if path is None:  # answered before routing (a 429, 413, 503 …): the route it was meant for
        path = _template_of_path(scope)
    return path if path is not None else "<unmatched>"


def _template_of_path(scope: Scope) -> str | None:
    app = scope.get("app")
    if app is None:
        return None
    for regex, template in _route_patterns(app):
        if regex.match(scope["path"]):
            return template
    return None


@functools.lru_cache(maxsize=4)
def _route_patterns(app: Any) -> tuple[tuple[re.Pattern[str], str], ...]:
    """Each route's path regex and template, compiled once per app."""
    contexts = iter_route_contexts(getattr(app, "routes", ()))
    return tuple((compile_path(c.path)[0], c.path) for c in contexts if c.path)


class AccessLogMiddleware:
    """Logs each HTTP request once it has finished, with the status actually sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Starlette builds the stack at the first request, after logging is configured.
        self.log = access_logger()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        HTTP_IN_FLIGHT.inc()

        def send_capturing_status(message: Message) -> Awaitable[None]:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            return send(message)

        try:
            await self.app(scope, receive, send_capturing_status)
        finally:
            HTTP_IN_FLIGHT.dec()
            seconds = time.perf_counter() - started
            route = route_template(scope)
            observe_request(scope["method"], route, status, seconds)
            self.log.info(
                "request",
                method=scope["method"],
                route=route,
                status=status,
                duration_ms=round(seconds * 1000, 2),
            )
