"""Request bodies bounded in size and in time, before any route work.

A `Content-Length` over the limit is answered 413 before a byte of the body is read. A body
without one (chunked) is counted in the `receive` wrapper and cut off with a 413 the moment it
passes the limit, so the server never holds more than the limit (plus one read). The whole body
must arrive within REQUEST_BODY_TIMEOUT of the head, or the request gets 408: a slow body would
otherwise hold one of the MAX_CONCURRENT_REQUESTS slots for good. A request without a body pays
one pass over its header names and nothing else.

A route that takes more (an upload) says so with FastAPI's own `max_body_size`, on the route or
its router; this layer reads those from the route table on the first request. Starlette's
`RequestBodyLimitMiddleware` (what `FastAPI(max_body_size=...)` installs) is not used for the
default: it wraps every request, bodiless ones included, only refuses an announced length once the
route reads the body or answers (after the route has run), and answers in plain text outside the
security headers and the correlation id.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.errors import (
    ContentTooLargeError,
    RequestBodyRefused,
    RequestTimeoutError,
    domain_problem,
)
from app.http.routes import api_routes

CHUNKED = -1
RouteLimit = tuple[re.Pattern[str], frozenset[str], int]


def announced_body(scope: Scope) -> int | None:
    """`Content-Length` as an int, `CHUNKED` for a body of unknown length, None for no body."""
    length: int | None = None
    for name, value in scope["headers"]:
        if name == b"content-length":
            # uvicorn's parser refuses a malformed length; another server might not: count it.
            length = int(value) if value.isdigit() else CHUNKED
        elif name == b"transfer-encoding":
            return CHUNKED
    return length or None


def _route_limits(app: FastAPI) -> list[RouteLimit]:
    limits: list[RouteLimit] = []
    for route in api_routes(app):
        limit = getattr(route, "max_body_size", None)
        if limit is not None:
            limits.append((route.path_regex, frozenset(route.methods or ()), limit))
    return limits


class _BoundedBody:
    """The `receive` wrapper: counts body bytes and keeps the body's deadline."""

    __slots__ = ("deadline", "done", "limit", "receive", "received")

    def __init__(self, receive: Receive, limit: int, deadline: float) -> None:
        self.receive = receive
        self.limit = limit
        self.deadline = deadline
        self.received = 0
        self.done = False

    async def __call__(self) -> Message:
        if self.done:  # after the body, receive only waits for a disconnect: no deadline
            return await self.receive()
        try:
            async with asyncio.timeout_at(self.deadline):
                message = await self.receive()
        except TimeoutError:
            detail = "The request body did not arrive in time; send it without pauses."
            raise RequestBodyRefused(RequestTimeoutError(detail)) from None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                raise RequestBodyRefused(too_large(self.limit))
            self.done = not message.get("more_body", False)
        return message


def too_large(limit: int) -> ContentTooLargeError:
    return ContentTooLargeError(
        f"The request body exceeds the limit of {limit} bytes.", limit_bytes=limit
    )


class BodyLimitMiddleware:
    """413 for a body over the limit (announced or counted), 408 for one that arrives too slowly."""

    def __init__(
        self, app: ASGIApp, max_body_bytes: int, body_timeout: float, support_url: str
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self.support_url = support_url
        self._route_limits: list[RouteLimit] | None = None

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        announced = announced_body(scope)
        if announced is None:
            return self.app(scope, receive, send)
        return self._bounded(scope, receive, send, announced)

    def _limit_for(self, scope: Scope) -> int:
        if self._route_limits is None:
            self._route_limits = _route_limits(scope["app"])
        for pattern, methods, limit in self._route_limits:
            if scope["method"] in methods and pattern.match(scope["path"]):
                return limit
        return self.max_body_bytes

    async def _bounded(self, scope: Scope, receive: Receive, send: Send, announced: int) -> None:
        limit = self._limit_for(scope)
        if announced > limit:
            await domain_problem(scope, too_large(limit), self.support_url)(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.body_timeout
        started = False

        def send_noting_start(message: Message) -> Awaitable[None]:
            nonlocal started
            started = True
            return send(message)

        try:
            await self.app(scope, _BoundedBody(receive, limit, deadline), send_noting_start)
        except RequestBodyRefused as refused:
            # Raised where no exception handler sees it (a middleware reading the body).
            if started:
                raise
            await domain_problem(scope, refused.error, self.support_url)(scope, receive, send)
