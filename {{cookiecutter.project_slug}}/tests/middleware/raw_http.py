"""Raw sockets against a real server: what a hostile or broken client sends, byte for byte.

An HTTP client library would refuse to send most of this (a 1 GiB Content-Length with no body,
a thousand headers, one header line every few hundred milliseconds), so the tests talk TCP.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Answer:
    """A response read off a raw socket."""

    status: int
    headers: dict[str, str]
    body: bytes = field(repr=False)

    def problem(self) -> dict[str, Any]:
        assert self.headers["content-type"] == "application/problem+json", self.headers
        document: dict[str, Any] = json.loads(self.body)
        return document


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def head(method: str, path: str, *fields: str) -> bytes:
    """A request line and header section (ending in the blank line) with a Host field."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *fields, "", ""]
    return "\r\n".join(lines).encode("latin-1")


def read_answer(sock: socket.socket) -> Answer:
    """Read one response; raises when the server closed the connection without one."""
    response = http.client.HTTPResponse(sock)
    try:
        response.begin()
        body = response.read()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return Answer(response.status, headers, body)
    finally:
        response.close()  # its file object holds the socket open otherwise


def exchange(port: int, request: bytes) -> Answer:
    with connect(port) as sock:
        sock.sendall(request)
        return read_answer(sock)


def send_until_answered(sock: socket.socket, chunks: int, chunk: bytes) -> int:
    """Send `chunk` up to `chunks` times, stopping once the server answers or hangs up.

    Returns how many chunks went out. Stopping at the first answer keeps the test from writing
    into a socket the server has closed (the reset would destroy the answer still unread).
    """
    for sent in range(chunks):
        readable, _, _ = select.select([sock], [], [], 0)
        if readable:
            return sent
        try:
            sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            return sent
    return chunks


def seconds_until_closed(
    sock: socket.socket, dribble: bytes | None, every: float, limit: float
) -> float:
    """Send `dribble` every `every` seconds until the server ends the connection.

    Returns the seconds it took, or `limit` when the connection was still open then. Whatever
    the server says on the way out (a 408) is read and dropped.
    """
    started = time.monotonic()
    while time.monotonic() - started < limit:
        readable, _, _ = select.select([sock], [], [], every)
        if readable:
            try:
                while sock.recv(65536):
                    pass
            except (ConnectionResetError, TimeoutError):
                pass
            return time.monotonic() - started
        if dribble is not None:
            try:
                sock.sendall(dribble)
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - started
    return limit


def memory_kib(pid: int) -> dict[str, int]:
    """`VmRSS` (now) and `VmHWM` (the peak so far) of process `pid`, in KiB."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    return values
