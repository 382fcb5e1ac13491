"""The service under fault: a real `serve` process, and clients sending it requests meanwhile."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx2

from app.dev.services import ServiceUrls
from app.tenants.service import NewTenant
from tests.processes import PROJECT_ROOT, env_for, free_port, wait_for_port

# The fault tests send far more than a client would: rate limits must not be what answers.
UNLIMITED = {"RATE_LIMIT_PER_IP": "1000000/minute", "RATE_LIMIT_PER_PRINCIPAL": "1000000/minute"}


@dataclass
class ServiceRun:
    """A `serve` process; after the block, its exit status and what it printed."""

    base_url: str
    returncode: int | None = None
    stdout_lines: list[str] = field(default_factory=list)
    stderr: str = ""

    def log_events(self) -> list[dict[str, Any]]:
        """Every stdout line parsed as JSON (fails the test on a line that is not)."""
        return [json.loads(line) for line in self.stdout_lines if line.strip()]


@contextmanager
def running_service(urls: ServiceUrls, **env: str) -> Iterator[ServiceRun]:
    """`python -m app serve` on `urls` (ENVIRONMENT=test, JSON logs, no rate limits) plus
    `env`; stopped with SIGTERM after the block, its output collected into the `ServiceRun`."""
    port = free_port()
    run = ServiceRun(f"http://127.0.0.1:{port}")
    # Files, not pipes: an outage logs a lot, and a full pipe nobody reads would block the
    # service's log writes, and with them its event loop.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(port)],
            env=env_for(urls, **{**UNLIMITED, **env}),
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=err,
            text=True,
        )
        try:
            assert wait_for_port(port, process), "the service did not start"
            yield run
        finally:
            process.send_signal(signal.SIGTERM)
            run.returncode = process.wait(timeout=30)
            out.seek(0)
            err.seek(0)
            run.stdout_lines = out.read().splitlines()
            run.stderr = err.read()


@dataclass(frozen=True)
class Outcome:
    """One request: its status (None when the client gave up) and how long it took."""

    status: int | None
    seconds: float


Request = Callable[[httpx2.Client, int], httpx2.Response]


class Traffic:
    """`clients` threads sending `request` back to back until the block ends.

    `request(client, n)` gets a per-thread client and a running number (for unique keys).
    """

    def __init__(self, request: Request, clients: int = 3, client_timeout: float = 30.0) -> None:
        self.request = request
        self.client_timeout = client_timeout
        self.outcomes: list[Outcome] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._loop, args=(i,)) for i in range(clients)]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _loop(self, index: int) -> None:
        with httpx2.Client(timeout=self.client_timeout) as client:
            n = 0
            while not self._stop.is_set():
                n += 1
                started = time.monotonic()
                try:
                    status: int | None = self.request(client, index * 1_000_000 + n).status_code
                except httpx2.HTTPError:
                    status = None
                with self._lock:
                    self.outcomes.append(Outcome(status, time.monotonic() - started))

    def statuses(self) -> set[int | None]:
        return {outcome.status for outcome in self.outcomes}


def wait_until_status(
    send: Callable[[], httpx2.Response], status: int, seconds: float = 15.0
) -> bool:
    """Poll `send` until it answers `status` (recovery after a fault)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if send().status_code == status:
                return True
        except httpx2.HTTPError:
            pass
        time.sleep(0.2)
    return False


def notes_traffic(base_url: str, tenant: NewTenant) -> Traffic:
    """Alternating reads and note creations (each with a fresh `Idempotency-Key`), as `tenant`."""
    auth = {"Authorization": f"Bearer {tenant.api_key}"}

    def request(client: httpx2.Client, n: int) -> httpx2.Response:
        if n % 2:
            return client.get(f"{base_url}/api/v1/notes", headers=auth)
        return client.post(
            f"{base_url}/api/v1/notes",
            json={"title": f"fault {n}", "body": "one two three"},
            headers={**auth, "Idempotency-Key": f'"fault-{uuid.uuid4()}"'},
        )

    return Traffic(request)
