"""A real HTTP server on loopback that receives webhook deliveries: headers and raw body."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from tests.loopback import serving


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    statuses: deque[int] = field(default_factory=deque)
    deliveries: list[Delivery] = field(default_factory=list)
    location: str = ""  # sent as Location with every answer when set (redirect tests)

    def fail_with(self, *statuses: int) -> None:
        """Answer these statuses to the next deliveries; 204 after the script runs out."""
        self.statuses.extend(statuses)

    def wait_for(self, count: int, timeout: float = 60) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while len(self.deliveries) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(self.deliveries) >= count, f"{len(self.deliveries)} of {count} deliveries"
        return list(self.deliveries)


def _handler(state: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            state.deliveries.append(Delivery(self.path, headers, body))
            self.send_response(state.statuses.popleft() if state.statuses else 204)
            if state.location:
                self.send_header("Location", state.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test reads `deliveries`."""

    return Handler


@contextmanager
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")
    with serving(_handler(state)) as url:
        state.url = f"{url}/hooks"
        yield state
