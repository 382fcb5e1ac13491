"""Bounded input at the HTTP edge, against a real `serve` process over raw sockets.

Body size (announced and streamed), header size and count, the header-read and body-read
deadlines and the per-process concurrency limit. Memory is read from /proc (VmHWM, the peak RSS),
never inferred from timings. The limits are set small through the settings so each test runs in
a few seconds.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from app.dev.services import ServiceUrls
from app.middleware.concurrency import ConcurrencyLimitMiddleware
from app.observability.logging import configure_logging
from app.settings import ConfigError, load_settings
from tests.middleware.raw_http import (
    connect,
    exchange,
    head,
    memory_kib,
    read_answer,
    seconds_until_closed,
    send_until_answered,
)
from tests.processes import env_for, failed_start, free_port, start_app, wait_for_port

BODY_LIMIT = 64 * 1024
HEADER_LIMIT = 8 * 1024
HEADER_COUNT_LIMIT = 40
HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 3.0
CONCURRENCY = 2
# Growth of the server's peak RSS allowed while it refuses a 16-40 MiB request.
MEMORY_SLACK_KIB = 12 * 1024
JSON = "Content-Type: application/json"


@pytest.fixture(scope="module")
def server(service_urls: ServiceUrls) -> Iterator[tuple[int, int]]:
    """A real `serve` with small limits; yields (port, pid)."""
    port = free_port()
    env = env_for(
        service_urls,
        MAX_REQUEST_BODY_BYTES=str(BODY_LIMIT),
        MAX_REQUEST_HEADER_BYTES=str(HEADER_LIMIT),
        MAX_REQUEST_HEADERS=str(HEADER_COUNT_LIMIT),
        HEADER_READ_TIMEOUT=str(HEADER_TIMEOUT),
        REQUEST_BODY_TIMEOUT=str(BODY_TIMEOUT),
        MAX_CONCURRENT_REQUESTS=str(CONCURRENCY),
        LOG_LEVEL="WARNING",
    )
    process = start_app(["serve", "--port", str(port)], env)
    try:
        assert wait_for_port(port, process), failed_start(process)
        yield port, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def test_announced_oversized_body_gets_413_before_any_byte_is_read(
    server: tuple[int, int],
) -> None:
    """`Content-Length: 1 GiB` is answered 413 at once, with no body sent, and the line closed."""
    port, _ = server
    request = head("POST", "/api/v1/notes", JSON, f"Content-Length: {1 << 30}")
    answer = exchange(port, request)
    assert answer.status == 413
    problem = answer.problem()
    assert str(problem["type"]).endswith("/problems/content-too-large")
    assert str(BODY_LIMIT) in str(problem["detail"])
    assert answer.headers["connection"] == "close"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "x-request-id" in answer.headers


def test_streamed_body_over_the_limit_is_cut_off_with_memory_bounded(
    server: tuple[int, int],
) -> None:
    """A chunked body is counted as it arrives: 413 past the limit; peak RSS barely moves."""
    port, pid = server
    chunk = b"10000\r\n" + b"a" * 0x10000 + b"\r\n"
    before = memory_kib(pid)
    with connect(port) as sock:
        sock.sendall(head("POST", "/api/v1/notes", JSON, "Transfer-Encoding: chunked"))
        sent = send_until_answered(sock, chunks=640, chunk=chunk)  # up to 40 MiB
        answer = read_answer(sock)
    after = memory_kib(pid)
    assert answer.status == 413
    assert str(answer.problem()["type"]).endswith("/problems/content-too-large")
    assert sent < 640
    assert after["VmHWM"] - before["VmHWM"] < MEMORY_SLACK_KIB, (before, after)


def test_header_section_over_the_byte_limit_gets_431(server: tuple[int, int]) -> None:
    """A header section larger than MAX_REQUEST_HEADER_BYTES is refused with a 431 problem."""
    port, _ = server
    answer = exchange(port, head("GET", "/health/live", "X-Filler: " + "a" * 20_000))
    assert answer.status == 431
    assert str(answer.problem()["type"]).endswith("/problems/header-fields-too-large")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["connection"] == "close"


def test_too_many_header_fields_get_431(server: tuple[int, int]) -> None:
    """More header fields than MAX_REQUEST_HEADERS are refused with a 431 problem."""
    port, _ = server
    fields = [f"X-Field-{number}: v" for number in range(HEADER_COUNT_LIMIT + 10)]
    answer = exchange(port, head("GET", "/health/live", *fields))
    assert answer.status == 431
    assert "header fields" in str(answer.problem()["detail"])


def test_a_16_mib_header_is_refused_with_memory_bounded(server: tuple[int, int]) -> None:
    """A 16 MiB header value is cut off at the limit, never buffered whole."""
    port, pid = server
    before = memory_kib(pid)
    with connect(port) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: ")
        sent = send_until_answered(sock, chunks=256, chunk=b"a" * 0x10000)
        answer = read_answer(sock)
    after = memory_kib(pid)
    assert answer.status == 431
    assert sent < 256
    assert after["VmHWM"] - before["VmHWM"] < MEMORY_SLACK_KIB, (before, after)


def test_a_malformed_request_gets_a_400_problem_with_security_headers(
    server: tuple[int, int],
) -> None:
    """uvicorn's own 400 for an unparseable request is a problem with the security headers."""
    port, _ = server
    answer = exchange(port, b"NOT HTTP AT ALL\r\n\r\n")
    assert answer.status == 400
    assert str(answer.problem()["type"]).endswith("/problems/bad-request")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["content-security-policy"].startswith("default-src 'none'")


def test_normal_requests_still_pass(server: tuple[int, int]) -> None:
    """A request inside every limit is served as before."""
    port, _ = server
    answer = exchange(port, head("GET", "/health/live", "Accept: application/json"))
    assert answer.status == 200


def test_dribbled_header_is_closed_at_the_header_read_timeout(server: tuple[int, int]) -> None:
    """One header line every 0.2 s does not hold the connection past HEADER_READ_TIMEOUT."""
    port, _ = server
    with connect(port) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\n")
        elapsed = seconds_until_closed(sock, b"X-Slow: 1\r\n", every=0.2, limit=6.0)
    assert elapsed < HEADER_TIMEOUT + 1.5


def test_silent_connection_is_closed_at_the_header_read_timeout(server: tuple[int, int]) -> None:
    """A connection that sends nothing is closed after HEADER_READ_TIMEOUT."""
    port, _ = server
    with connect(port) as sock:
        elapsed = seconds_until_closed(sock, None, every=0.2, limit=6.0)
    assert elapsed < HEADER_TIMEOUT + 1.5


def _hold_a_slot(stack: ExitStack, port: int) -> socket.socket:
    """A POST that announces 100 bytes and sends 1: it stays in flight until the body deadline."""
    sock = stack.enter_context(connect(port))
    sock.sendall(head("POST", "/api/v1/notes", JSON, "Content-Length: 100") + b"{")
    return sock


def test_concurrency_limit_sheds_with_503_and_slow_bodies_time_out(
    server: tuple[int, int],
) -> None:
    """Past MAX_CONCURRENT_REQUESTS a request gets 503 + Retry-After; probes still answer;
    the slow bodies holding the slots get 408 at REQUEST_BODY_TIMEOUT, freeing them."""
    port, _ = server
    with ExitStack() as stack:
        holders = [_hold_a_slot(stack, port) for _ in range(CONCURRENCY)]
        shed = None
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            shed = exchange(port, head("GET", "/api/v1/notes"))
            if shed.status == 503:
                break
            time.sleep(0.05)
        assert shed is not None
        assert shed.status == 503, shed
        assert shed.headers["retry-after"] == "1"
        assert str(shed.problem()["type"]).endswith("/problems/overloaded")
        assert exchange(port, head("GET", "/health/live")).status == 200
        for holder in holders:
            answer = read_answer(holder)
            assert answer.status == 408
            assert str(answer.problem()["type"]).endswith("/problems/request-timeout")
    assert exchange(port, head("GET", "/api/v1/notes")).status == 401


def test_bad_limits_are_refused_naming_each_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Limits out of range, and a PUBLIC_BASE_URL with a query, stop the process: each is named."""
    bad = {
        "MAX_REQUEST_BODY_BYTES": "0",
        "MAX_REQUEST_HEADER_BYTES": "10",
        "MAX_REQUEST_HEADERS": "100000",
        "HEADER_READ_TIMEOUT": "0",
        "REQUEST_BODY_TIMEOUT": "-1",
        "KEEP_ALIVE_TIMEOUT": "0",
        "MAX_CONCURRENT_REQUESTS": "0",
        "PUBLIC_BASE_URL": "https://api.example.com/?next=evil",
    }
    for name, value in bad.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert set(refused.value.problems) == set(bad)


async def test_shedding_under_overload_logs_once_per_interval(
    log_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    """Shedding 50 requests logs one `request_shed` warning, not one per shed request."""
    configure_logging("INFO", "json")

    async def never_called(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("a shed request reached the app")

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    answers: list[int] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            answers.append(message["status"])

    shedding = ConcurrencyLimitMiddleware(never_called, limit=0, support_url="https://s.test/")
    log_lines()
    for _ in range(50):
        scope = {"type": "http", "method": "GET", "path": "/api/v1/notes", "headers": []}
        await shedding(scope, receive, send)
    assert answers == [503] * 50
    assert [line["event"] for line in log_lines()].count("request_shed") == 1
