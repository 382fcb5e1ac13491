"""Conditional GET for every route: `If-None-Match` against the `ETag` the route answered with.

A route that sets an `ETag` on its 200 gets revalidation without handling `If-None-Match`
itself: when the request's header names the response's tag (weak comparison, RFC 9110 section
13.1.2), or is `*`, the client gets 304 with the 200's headers (its `ETag` and `Cache-Control`
among them, section 15.4.5) and no body. Anything else passes through untouched: other methods,
other statuses, responses without an `ETag`, and a malformed header, which is ignored (section
13.1.2 leaves a server free to; answering 200 is always correct).

The route still builds its body; what a 304 saves is the transfer and the client's parsing.
Django's `ConditionalGetMiddleware` works the same way. A route reading `If-None-Match` as a
FastAPI `Header` parameter instead pays for it on every request: about 100 function calls of
parameter resolution, 4 % of a read (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.etags import names_entity_tag

_CONDITIONAL_METHODS = frozenset({"GET", "HEAD"})
# A 304 has no content, so nothing describes it (RFC 9110 section 15.4.5).
_CONTENT_HEADERS = frozenset({b"content-length", b"content-type"})


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    value: bytes | None = next((v for k, v in headers if k == name), None)
    return value.decode("latin-1") if value is not None else None


class ConditionalGetMiddleware:
    """Answers 304 when `If-None-Match` names the `ETag` of the route's 200 (GET and HEAD)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # A request without the header costs one scan of its headers and nothing more.
        if scope["type"] != "http" or scope["method"] not in _CONDITIONAL_METHODS:
            return self.app(scope, receive, send)
        condition = _header(scope["headers"], b"if-none-match")
        if condition is None:
            return self.app(scope, receive, send)
        return self.app(scope, receive, _NotModifiedSend(send, condition))


class _NotModifiedSend:
    """The `send` of one conditional request: turns a matching 200 into a bodiless 304."""

    def __init__(self, send: Send, condition: str) -> None:
        self.send = send
        self.condition = condition
        self.not_modified = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = message.get("headers", ())
            etag = _header(headers, b"etag") if message["status"] == 200 else None
            if etag is not None and names_entity_tag(self.condition, etag):
                self.not_modified = True
                kept = [pair for pair in headers if pair[0] not in _CONTENT_HEADERS]
                message = {**message, "status": 304, "headers": kept}
        elif message["type"] == "http.response.body" and self.not_modified:
            if message.get("more_body", False):
                return  # the rest of a body the client will not get
            message = {"type": "http.response.body", "body": b""}
        await self.send(message)
