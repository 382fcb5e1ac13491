"""OBS-LOGGING: the request id is accepted when well-formed, generated otherwise, always echoed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from app.middleware.correlation import CorrelationIdMiddleware, current_request_id


def test_well_formed_request_id_is_echoed(client: TestClient) -> None:
    """A client's well-formed X-Request-ID comes back unchanged."""
    response = client.get("/health/live", headers={"X-Request-ID": "req-abc.123:4"})
    assert response.headers["x-request-id"] == "req-abc.123:4"


@pytest.mark.parametrize(
    "bad_id", ["", "has space", "x" * 200, 'quote"d', "semi;colon", "-leading-dash"]
)
def test_malformed_request_id_is_replaced(client: TestClient, bad_id: str) -> None:
    """A malformed X-Request-ID is never echoed; a fresh one is generated instead."""
    response = client.get("/health/live", headers={"X-Request-ID": bad_id})
    echoed = response.headers["x-request-id"]
    assert echoed != bad_id
    assert len(echoed) == 32


def test_errors_carry_the_same_id_in_header_and_body(client: TestClient) -> None:
    """A 404 problem's correlation_id equals the X-Request-ID header."""
    response = client.get("/no/such/route", headers={"X-Request-ID": "trace-me-1"})
    assert response.status_code == 404
    assert response.json()["correlation_id"] == "trace-me-1"


def test_every_log_line_of_a_request_carries_its_id(
    client: TestClient, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    """The access log line has the request id, route template, status and duration."""
    log_lines()
    client.get("/health/live", headers={"X-Request-ID": "log-me-7"})
    access = [line for line in log_lines() if line.get("event") == "request"]
    assert len(access) == 1
    line = access[0]
    assert line["request_id"] == "log-me-7"
    assert (line["method"], line["route"], line["status"]) == ("GET", "/health/live", 200)
    assert line["duration_ms"] >= 0
    assert (line["logger"], line["level"]) == ("app.access", "info")
    assert "timestamp" in line


async def test_request_id_is_unbound_after_the_request() -> None:
    """Called directly: the id is visible inside the app and cleared once it returns."""
    seen: list[str | None] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(current_request_id())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    scope: Scope = {"type": "http", "headers": [(b"x-request-id", b"direct-1")]}
    await CorrelationIdMiddleware(inner)(scope, receive, send)
    assert seen == ["direct-1"]
    assert current_request_id() is None
    assert (b"x-request-id", b"direct-1") in sent[0]["headers"]
