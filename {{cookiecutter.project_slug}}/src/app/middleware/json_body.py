"""JSON routes take JSON: 415 for any other media type, 400 for an object with a duplicate key.

FastAPI answers a text/plain, form or XML body on a JSON route with a 422 about the body's type,
and parses JSON with "last duplicate wins", so `{"role": "member", "role": "owner"}` means what
the parser says, which differs between parsers (RFC 8259 section 4; RFC 7493 forbids it). This
layer holds for every route, the ones a user adds included, without changing how a route is
written. Which routes take a JSON body is read from the route table on the first request: each
`APIRoute` with a body that is not a form or a file.

Cost: nothing for a request without a body. A JSON body is collected (the body limit outside
bounds it), checked with one parse whose hook compares each object's key count, and handed on
whole; the route parses it again, which is the price of not touching the routes. A body in
another media type is checked against the route table only then, on its way to a 415; one for a
route that takes no JSON (an upload's octet stream) goes through untouched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable
from typing import Any

from fastapi import FastAPI, params
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.errors import DuplicateJsonKeyError, UnsupportedMediaTypeError, domain_problem
from app.http.routes import api_routes
from app.middleware.body_limit import announced_body

JSON_MEDIA_TYPE = "application/json"
KEY_SHOWN = 64  # characters of an offending key echoed back
RouteMatch = tuple[re.Pattern[str], frozenset[str]]


def is_json(content_type: bytes) -> bool:
    """`application/json` or any `application/*+json`, parameters (a charset) ignored."""
    media = content_type.partition(b";")[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


def _json_routes(app: FastAPI) -> list[RouteMatch]:
    routes: list[RouteMatch] = []
    for context in api_routes(app):
        route = context.original_route
        assert isinstance(route, APIRoute)  # noqa: S101 - api_routes yields APIRoutes only
        field = route.body_field
        if field is not None and not isinstance(field.field_info, params.Form):
            routes.append((context.path_regex, frozenset(context.methods or ())))
    return routes


class _DuplicateKeyError(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKeyError(key)
            seen.add(key)
    return document


def duplicate_key(body: bytes) -> str | None:
    """The first key some object of `body` names twice; None when there is none.

    A body that is not JSON at all passes: the route answers it with its own 422.
    """
    try:
        json.loads(body, object_pairs_hook=_unique_object)
    except _DuplicateKeyError as duplicate:
        return duplicate.key
    except (ValueError, RecursionError):
        return None
    return None


async def _collect(receive: Receive) -> tuple[bytes, Message | None]:
    """The whole body; or the message that ended it early (a disconnect) to pass on."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"", message
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), None


class JsonBodyMiddleware:
    """415 for a non-JSON body on a JSON route; 400 naming a key some object repeats."""

    def __init__(self, app: ASGIApp, support_url: str) -> None:
        self.app = app
        self.support_url = support_url
        self._json_routes: list[RouteMatch] | None = None

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http" or announced_body(scope) is None:
            return self.app(scope, receive, send)
        content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
        if is_json(content_type):
            return self._check_json(scope, receive, send)
        if self._takes_json(scope):
            return self._refuse(scope, receive, send, content_type)
        return self.app(scope, receive, send)

    def _takes_json(self, scope: Scope) -> bool:
        if self._json_routes is None:
            self._json_routes = _json_routes(scope["app"])
        return any(
            scope["method"] in methods and pattern.match(scope["path"])
            for pattern, methods in self._json_routes
        )

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, media: bytes) -> None:
        named = media.decode("latin-1").partition(";")[0].strip()[:KEY_SHOWN] or "none"
        error = UnsupportedMediaTypeError(
            f"This route takes {JSON_MEDIA_TYPE}, not {named}; send the body as JSON with "
            f"Content-Type: {JSON_MEDIA_TYPE}.",
            method=scope["method"],
            accepted=JSON_MEDIA_TYPE,
        )
        await domain_problem(scope, error, self.support_url)(scope, receive, send)

    async def _check_json(self, scope: Scope, receive: Receive, send: Send) -> None:
        body, early_end = await _collect(receive)
        if early_end is None and (key := duplicate_key(body)) is not None:
            shown = key[:KEY_SHOWN]
            error = DuplicateJsonKeyError(
                f'The JSON body names "{shown}" more than once in one object; send each '
                "member once.",
                key=shown,
            )
            await domain_problem(scope, error, self.support_url)(scope, receive, send)
            return
        replay: list[Message] = [
            early_end or {"type": "http.request", "body": body, "more_body": False}
        ]

        async def receive_body() -> Message:
            return replay.pop() if replay else await receive()

        await self.app(scope, receive_body, send)
