"""A real HTTP server on loopback that answers from a script: statuses, delays, Retry-After."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from tests.loopback import serving


@dataclass(frozen=True)
class Reply:
    status: int = 200
    delay: float = 0.0
    retry_after: str | None = None


@dataclass
class FlakyServer:
    url: str
    script: deque[Reply] = field(default_factory=deque)
    hits: list[tuple[float, str, dict[str, str]]] = field(default_factory=list)

    def answer(self, *replies: Reply) -> None:
        """Queue the next replies; once the script runs out, every request gets a 200."""
        self.script.extend(replies)

    @property
    def times(self) -> list[float]:
        return [hit[0] for hit in self.hits]


def _handler(server: FlakyServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            server.hits.append((time.monotonic(), self.command, dict(self.headers.items())))
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            reply = server.script.popleft() if server.script else Reply()
            time.sleep(reply.delay)
            body = f'{{"status": {reply.status}}}'.encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if reply.retry_after is not None:
                self.send_header("Retry-After", reply.retry_after)
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _reply  # noqa: N815 - http.server's names

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test reads `hits`, not stderr."""

    return Handler


@contextmanager
def flaky_server() -> Iterator[FlakyServer]:
    state = FlakyServer(url="")
    with serving(_handler(state)) as url:
        state.url = url
        yield state
