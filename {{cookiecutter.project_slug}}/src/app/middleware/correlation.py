"""Correlation ids: accept a well-formed `X-Request-ID` or make one; echo it; log with it."""

from __future__ import annotations

import random
import re
from collections.abc import Awaitable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.middleware.headers import set_headers
from app.observability.logging import REQUEST_ID

REQUEST_ID_HEADER = "x-request-id"
REQUEST_ID_HEADER_BYTES = REQUEST_ID_HEADER.encode()
_REPLACED = frozenset({REQUEST_ID_HEADER_BYTES})
# Bounded and boring on purpose: the id lands in logs and headers, so no spaces, quotes or CR/LF.
_WELL_FORMED = re.compile(rb"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def current_request_id() -> str | None:
    """The correlation id of the request being served, if any."""
    return REQUEST_ID.get()


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            return value.decode("ascii") if _WELL_FORMED.match(value) else None
    return None


class CorrelationIdMiddleware:
    """Binds the request id for every log line of the request and echoes it on the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # 128 random bits as 32 hex digits, the shape of `uuid4().hex` without its system call per
        # request. A correlation id only has to be unique, not unguessable (clients may send their
        # own), so the process's Mersenne Twister does; `random` reseeds itself in forked children.
        request_id = _incoming_request_id(scope) or f"{random.getrandbits(128):032x}"
        header = [(REQUEST_ID_HEADER_BYTES, request_id.encode())]

        def send_with_request_id(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                set_headers(message, header, _REPLACED)
            return send(message)

        # `app.observability.logging.add_request_and_trace_ids` puts it on every line: one
        # ContextVar, set and reset, instead of a structlog bind and unbind per request.
        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            REQUEST_ID.reset(token)
