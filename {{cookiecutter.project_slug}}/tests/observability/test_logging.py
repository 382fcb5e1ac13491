"""OBS-LOGGING and SEC-SECRETS: JSON lines, secrets redacted from headers, bodies and tracebacks."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import sys
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import structlog
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from app.auth.api_keys import issue_key
from app.auth.signing_keys import parse_signing_keys
from app.auth.tokens import AccessClaims, issue_access_token, new_device_id, new_refresh_token
from app.middleware.access_log import AccessLogMiddleware
from app.observability.logging import REDACTED, configure_logging, get_logger

BEARER = "Bearer abc.DEF-ghi_123secret"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLXNlY3JldA"
PASSWORD = "correct-horse-battery"
LogLines = Callable[[], list[dict[str, Any]]]


def test_sensitive_keys_are_redacted_recursively(client: TestClient, log_lines: LogLines) -> None:
    """Authorization, cookies, passwords, tokens and API keys are masked at any depth."""
    log_lines()
    get_logger("test").info(
        "login",
        headers={"authorization": BEARER, "cookie": "session=abc", "accept": "*/*"},
        body={"user": "ann", "password": PASSWORD, "nested": [{"api_key": "k-123"}]},
        refresh_token="r-456",
    )
    (line,) = log_lines()
    assert line["headers"] == {"authorization": REDACTED, "cookie": REDACTED, "accept": "*/*"}
    assert line["body"]["password"] == REDACTED
    assert line["body"]["nested"] == [{"api_key": REDACTED}]
    assert line["refresh_token"] == REDACTED
    assert line["body"]["user"] == "ann"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"calling upstream with {BEARER}", "123secret"),
        (f"token was {JWT}", JWT),
        ("postgresql://app:" + PASSWORD + "@db/acme failed", PASSWORD),
        (f"GET /cb?token={PASSWORD}&x=1", PASSWORD),
        (f"retrying with passwd={PASSWORD}", PASSWORD),
        ("endpoint key whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa"),
        ("signing key whsk_c2lnbmluZy1rZXk=", "c2lnbmluZy1rZXk="),
    ],
)
def test_secret_shaped_values_are_redacted_anywhere(
    client: TestClient, log_lines: LogLines, text: str, secret: str
) -> None:
    """Bearer tokens, JWTs, URL passwords, password and token parameters and webhook secrets are
    masked by shape."""
    log_lines()
    get_logger("test").warning("upstream", detail=text)
    (line,) = log_lines()
    assert secret not in line["detail"]
    assert REDACTED in line["detail"]


def _session_credentials() -> dict[str, str]:
    """One freshly made credential of each shape the service issues."""
    tenant = uuid.uuid4()
    claims = AccessClaims(uuid.uuid4(), "ann@example.com", tenant, uuid.uuid4(), "member")
    keys = parse_signing_keys("k1:" + "s" * 32)
    return {
        "access token (JWT)": issue_access_token(keys, claims, timedelta(minutes=10)),
        "refresh token": new_refresh_token(tenant).cookie_value,
        # Most of a secret is still a secret: masked by its prefix, not by its exact length.
        "refresh token cut short": new_refresh_token(tenant).cookie_value[:-2],
        "device id": new_device_id(),
        "API key": issue_key().plaintext,
    }


@pytest.mark.parametrize("shape", list(_session_credentials()))
def test_session_credentials_are_masked_by_shape_wherever_they_sit(
    client: TestClient, log_lines: LogLines, shape: str
) -> None:
    """A JWT, a refresh token, a device id or an API key, as issued, never reaches a line: not
    in free text, not in a raw Cookie header, not under an innocent key, not via `logging`."""
    credential = _session_credentials()[shape]
    log_lines()
    get_logger("test").info("seen", detail=f"presented {credential}", value=credential)
    get_logger("test").info("cookies", raw=f"__Host-access={credential}; __Secure-refresh=x")
    logging.getLogger("thirdparty").warning("refused %s", credential)
    lines = log_lines()
    assert len(lines) == 3
    assert credential not in repr(lines)
    assert all(REDACTED in json.dumps(line) for line in lines)


def test_a_43_character_name_in_one_case_is_not_taken_for_a_device_id(
    client: TestClient, log_lines: LogLines
) -> None:
    """Only mixed-case 43-character runs look random: snake_case and hex-like names stay."""
    name = "test_a_request_full_of_secrets_leaves_none1"
    assert len(name) == 43
    log_lines()
    get_logger("test").info("ran", test=name, upper=name.upper())
    (line,) = log_lines()
    assert (line["test"], line["upper"]) == (name, name.upper())


def test_standard_library_loggers_are_json_and_redacted(
    client: TestClient, log_lines: LogLines
) -> None:
    """Third-party loggers (here a plain `logging` one) go through the same redaction."""
    log_lines()
    logging.getLogger("thirdparty").warning("connecting with %s", BEARER)
    (line,) = log_lines()
    assert line["level"] == "warning"
    assert "123secret" not in line["event"]


def test_a_request_full_of_secrets_leaves_none_in_the_logs(
    app: FastAPI, log_lines: LogLines
) -> None:
    """Secrets in headers, cookies and the body of a failing request appear in no log line."""

    @app.post("/explode")
    async def explode(request: Request) -> None:
        body = await request.body()
        get_logger("test").info("received", headers=dict(request.headers), raw=body.decode())
        raise ValueError(f"bad payload {body.decode()} with {request.headers['authorization']}")

    log_lines()
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post(
            "/explode",
            headers={"Authorization": BEARER, "Cookie": f"session={PASSWORD}"},
            content=f'{{"password": "{PASSWORD}"}}'.encode(),
        )
    assert response.status_code == 500
    lines = log_lines()
    assert {line["event"] for line in lines} >= {"received", "unhandled_exception", "request"}
    rendered = repr(lines)
    assert PASSWORD not in rendered
    assert "123secret" not in rendered


def test_uvicorn_colour_copies_and_odd_values_do_not_break_a_line(
    client: TestClient, log_lines: LogLines
) -> None:
    """uvicorn's ANSI `color_message` extra is dropped; values JSON lacks a type for still log."""
    log_lines()
    logging.getLogger("uvicorn.error").info("Started [%d]", 7, extra={"color_message": "\x1b[36m"})
    get_logger("test").info("odd", big=2**70, when={1: "int key"}, thing=object())
    started, odd = log_lines()
    assert started["event"] == "Started [7]"
    assert "color_message" not in started
    assert odd["big"] == 2**70
    assert odd["when"] == {"1": "int key"}
    assert odd["thing"].startswith("<object object")


async def test_lines_logged_in_one_loop_turn_are_flushed_on_the_next(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """On the event loop, flushes wait for the loop's next turn, then every line is out."""
    configure_logging("INFO", "json")
    sys.stdout.flush()
    capfd.readouterr()
    # A block-buffered stdout, as under a process manager: only a flush reaches the descriptor.
    buffered = io.TextIOWrapper(os.fdopen(os.dup(1), "wb"))
    with buffered, contextlib.redirect_stdout(buffered):
        for number in range(3):
            get_logger("test").info("batched", number=number)
        assert capfd.readouterr().out == ""  # still in the buffer: no write per line
        await asyncio.sleep(0)
        lines = [json.loads(line) for line in capfd.readouterr().out.splitlines()]
    assert [line["number"] for line in lines] == [0, 1, 2]


class _RecordingStdout(io.StringIO):
    """An unbuffered process stdout (PYTHONUNBUFFERED=1): each `write` call would be a syscall."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)


def _unbuffered_stdout(monkeypatch: pytest.MonkeyPatch) -> _RecordingStdout:
    """The process's own stdout, replaced by one that records each write call.

    Called in the test itself: pytest puts its own capture back on `sys.stdout` after fixtures.
    """
    configure_logging("INFO", "json")
    stdout = _RecordingStdout()
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(sys, "__stdout__", stdout)
    return stdout


async def test_lines_for_an_unbuffered_stdout_leave_in_one_write_per_loop_turn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On the process's own stdout, the lines of one loop turn are one write, on the next turn."""
    unbuffered_stdout = _unbuffered_stdout(monkeypatch)
    for number in range(3):
        get_logger("test").info("held", number=number)
    assert unbuffered_stdout.writes == []
    await asyncio.sleep(0)
    (written,) = unbuffered_stdout.writes
    assert [json.loads(line)["number"] for line in written.splitlines()] == [0, 1, 2]


def test_lines_logged_off_the_event_loop_are_written_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a running loop (CLI, worker threads) nothing waits: each line is out on return."""
    unbuffered_stdout = _unbuffered_stdout(monkeypatch)
    get_logger("test").info("first")
    get_logger("test").info("second")
    assert [json.loads(text)["event"] for text in unbuffered_stdout.writes] == ["first", "second"]


async def test_the_access_line_is_merged_and_redacted_like_every_line(log_lines: LogLines) -> None:
    """The access line's own, shorter chain still adds bound context and still redacts it."""
    configure_logging("INFO", "json")

    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        return None

    middleware = AccessLogMiddleware(answer)
    log_lines()
    structlog.contextvars.bind_contextvars(api_key="k-123", upstream=BEARER)
    try:
        await middleware({"type": "http", "method": "GET", "path": "/x"}, receive, send)
    finally:
        structlog.contextvars.clear_contextvars()
    (line,) = [line for line in log_lines() if line["event"] == "request"]
    assert (line["logger"], line["status"], line["api_key"]) == ("app.access", 204, REDACTED)
    assert "123secret" not in line["upstream"]


def test_timestamps_are_utc_iso_8601_with_microseconds(
    log_lines: LogLines, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each line carries its own instant, also when consecutive lines fall in different seconds."""
    configure_logging("INFO", "json")
    log_lines()
    instants = iter([1_700_000_000.5, 1_700_000_000.75, 1_700_000_001.25])
    monkeypatch.setattr("app.observability.logging.time.time", lambda: next(instants))
    for _ in range(3):
        get_logger("test").info("tick")
    assert [line["timestamp"] for line in log_lines()] == [
        "2023-11-14T22:13:20.500000Z",
        "2023-11-14T22:13:20.750000Z",
        "2023-11-14T22:13:21.250000Z",
    ]
