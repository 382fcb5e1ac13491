"""The HTTP server's own limits: header bytes and fields, and a deadline for the request head.

uvicorn (0.55, with the httptools parser of `uvicorn[standard]`) bounds neither the size nor the
number of header fields, and sets no deadline for receiving them: a 16 MB header was buffered
whole, and a client sending one header line every 10 s held its connection for good. ASGI
middleware only runs once the head is complete, too late for either, so they live in the
protocol: a subclass of uvicorn's `HttpToolsProtocol`, handed to uvicorn through its supported
`http=` setting. It overrides only asyncio's Protocol methods and httptools' parser callbacks
(both public interfaces) and calls the parent's method in each. Switching to h11 was the other
way: it bounds header bytes (`h11_max_incomplete_event_size`) but neither the field count nor
the time, and it parses in pure Python on every request.

The protocol's own answers (431, 408, and uvicorn's 400 for a malformed request) are problem
documents carrying the security headers, like every answer of the app.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Coroutine
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, cast

from starlette.types import Message, Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from app.http.errors import (
    DomainError,
    HeaderFieldsTooLargeError,
    RequestTimeoutError,
    problem_type_uri,
)
from app.http.problems import PROBLEM_JSON, problem_body
from app.middleware.security_headers import SecurityHeadersMiddleware
from app.observability.logging import get_logger
from app.settings import Settings, get_settings

log = get_logger("app.http_server")
RawHeader = tuple[bytes, bytes]


@dataclass(frozen=True)
class HeadLimits:
    max_bytes: int
    max_fields: int
    timeout: float
    support_url: str
    fixed_headers: tuple[RawHeader, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> HeadLimits:
        return cls(
            max_bytes=settings.max_request_header_bytes,
            max_fields=settings.max_request_headers,
            timeout=settings.header_read_timeout,
            support_url=str(settings.support_url),
            fixed_headers=tuple(_security_fields(settings.is_production)),
        )


async def _no_request() -> Message:
    return {"type": "http.disconnect"}


def _security_fields(hsts: bool) -> list[RawHeader]:
    """The fields SecurityHeadersMiddleware puts on an API answer, read off the middleware."""
    fields: list[RawHeader] = []

    async def answer(_scope: Scope, _receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 400, "headers": []})

    async def keep(message: Message) -> None:
        fields.extend(message["headers"])

    # Nothing in it waits, so one step runs it to the end without an event loop.
    run = cast(
        Coroutine[Any, Any, None],
        SecurityHeadersMiddleware(answer, hsts)({"type": "http"}, _no_request, keep),
    )
    try:
        run.send(None)
    except StopIteration:
        return fields
    run.close()
    raise RuntimeError("SecurityHeadersMiddleware waited on something")


_limits: HeadLimits | None = None


def head_limits() -> HeadLimits:
    """The limits of this process, from its settings (a worker process reads its own)."""
    global _limits  # one immutable value per process, made on first use
    if _limits is None:
        _limits = HeadLimits.from_settings(get_settings())
    return _limits


def problem_bytes(error: DomainError, limits: HeadLimits) -> bytes:
    """A whole HTTP/1.1 response for `error`, closing the connection, ready for the socket."""
    request_id = f"{random.getrandbits(128):032x}"
    body = problem_body(
        error.status,
        error.title,
        error.detail,
        limits.support_url,
        problem_type=problem_type_uri(limits.support_url, error.slug),
        instance=f"urn:request:{request_id}",
    )
    body["correlation_id"] = request_id
    content = json.dumps(body, separators=(",", ":")).encode()
    fields = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(content)).encode()),
        (b"connection", b"close"),
        (b"x-request-id", request_id.encode()),
        *limits.fixed_headers,
    ]
    status = f"HTTP/1.1 {error.status} {HTTPStatus(error.status).phrase}\r\n".encode()
    head = b"".join(name + b": " + value + b"\r\n" for name, value in fields)
    log.warning(
        "request_refused_by_server", status=error.status, request_id=request_id, reason=error.detail
    )
    return status + head + b"\r\n" + content


class _HeadRefusedError(Exception):
    """Raised in a parser callback to stop parsing; uvicorn then calls `send_400_response`."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bounded request head (size, fields, time)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = head_limits()
        self.head_timer: asyncio.TimerHandle | None = None
        self.reading_head = True  # a new connection owes us a request head
        self.head_started = False  # some byte of that head has arrived
        self.heads_begun = 0
        self.head_bytes = 0  # request line and complete fields, as the parser reports them
        self.raw_head_bytes = 0  # reads holding only head bytes: bounds the parser's buffer
        self.head_fields = 0
        self.refusal: DomainError | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        begun = self.heads_begun
        super().data_received(data)
        # A read in which no head began and the head is still incomplete is head through and
        # through: count it, so a field value the parser buffers whole stays bounded.
        if self.reading_head and begun == self.heads_begun and not self.transport.is_closing():
            self.raw_head_bytes += len(data)
            if self.raw_head_bytes > self.limits.max_bytes:
                self._refuse(self._too_large())

    # httptools parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.heads_begun += 1
        self.reading_head = self.head_started = True
        self.head_bytes = self.raw_head_bytes = self.head_fields = 0
        self._arm_head_timer()

    def on_url(self, url: bytes) -> None:
        self._count(len(url), fields=0)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4, fields=1)  # 4: ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.reading_head = self.head_started = False
        self._disarm_head_timer()
        super().on_headers_complete()

    # uvicorn calls this for any parser error, ours (raised in a callback) included.
    def send_400_response(self, msg: str) -> None:
        self._refuse(self.refusal or DomainError(msg))

    def _count(self, size: int, fields: int) -> None:
        self.head_bytes += size
        self.head_fields += fields
        if self.head_bytes > self.limits.max_bytes:
            self.refusal = self._too_large()
        elif self.head_fields > self.limits.max_fields:
            detail = f"The request has more than {self.limits.max_fields} header fields."
            self.refusal = HeaderFieldsTooLargeError(detail)
        if self.refusal is not None:
            raise _HeadRefusedError

    def _too_large(self) -> DomainError:
        detail = f"The request line and header fields exceed {self.limits.max_bytes} bytes."
        return HeaderFieldsTooLargeError(detail)

    def _refuse(self, error: DomainError) -> None:
        self._disarm_head_timer()
        if not self.transport.is_closing():
            self.transport.write(problem_bytes(error, self.limits))
            self.transport.close()

    def _arm_head_timer(self) -> None:
        if self.head_timer is None:
            self.head_timer = self.loop.call_later(self.limits.timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if not self.reading_head or self.transport.is_closing():
            return
        if not self.head_started:
            self.transport.close()  # nothing sent at all: nothing to answer
            return
        detail = f"The request head did not arrive within {self.limits.timeout:g} s."
        self._refuse(RequestTimeoutError(detail))


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn.run keyword arguments for the limits above and the keep-alive timeout."""
    return {"http": BoundedHttpToolsProtocol, "timeout_keep_alive": settings.keep_alive_timeout}
