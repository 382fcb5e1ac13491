"""The trivial route the in-process benchmarks send through the stack: one app, one request.

`bench/layers.py` and `bench/instructions.py` both call `/hello` straight through ASGI, with no
server, so they share the bare app and the request they build.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.types import Message


def hello_app() -> FastAPI:
    """Bare FastAPI with `/hello` as its only route, as `bench/bare_app.py` serves it."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    return app


def hello_scope() -> dict[str, Any]:
    """A fresh ASGI scope for `GET /hello` from 127.0.0.1, as uvicorn would build it."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/hello",
        "raw_path": b"/hello",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8000")],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def receive_nothing() -> Message:
    """The request body of a GET: empty, complete."""
    return {"type": "http.request", "body": b"", "more_body": False}


async def discard(message: Message) -> None:
    """A client that reads the response and throws it away."""
    return None
