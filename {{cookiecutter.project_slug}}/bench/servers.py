"""The processes `make bench` measures: PostgreSQL and Redis (configured or embedded), the
service, and the bare app, each on loopback with its output in a log file."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from redis import Redis

from app.dev.services import configured_or_embedded, drop_database, prepare_database

BENCH_DIR = Path(__file__).resolve().parent
PROJECT = BENCH_DIR.parent
EMBEDDED_ROOT = PROJECT / ".devservices" / "bench"


@dataclass(frozen=True)
class Services:
    owner_url: str
    runtime_url: str
    redis_url: str
    name: str  # database, task queue and Redis key prefix of this run


def _drop_redis_keys(redis_url: str, prefix: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@contextmanager
def services() -> Iterator[Services]:
    """TEST_DATABASE_URL / TEST_REDIS_URL when set (as the test suite), else embedded servers."""
    with ExitStack() as stack:
        admin, redis_url = configured_or_embedded(stack, EMBEDDED_ROOT)
        name = f"bench_http_{os.getpid()}"
        owner_url, runtime_url = prepare_database(admin, name, recreate=True)
        try:
            yield Services(owner_url, runtime_url, redis_url, name)
        finally:
            drop_database(admin, name)
            _drop_redis_keys(redis_url, name)


def cli(env: dict[str, str], *args: str) -> str:
    """Run the project's console script (`python -m app`) and return its stdout."""
    argv = [sys.executable, "-m", "app", *args]
    done = subprocess.run(argv, env=env, check=False, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"app {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def request(port: int, method: str, path: str, headers: dict[str, str], body: str = "") -> bytes:
    """One HTTP request on loopback; raises unless it gets a 2xx."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body or None, headers=headers)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    if not 200 <= response.status < 300:
        raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
    return data


def create_notes(port: int, api_key: str, count: int) -> list[str]:
    """Notes created through the service's own API; returns their ids."""
    ids = []
    for number in range(count):
        headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Idempotency-Key": f"seed-{number}",
        }
        body = json.dumps({"title": f"note {number}", "body": "seeded by make bench"})
        ids.append(json.loads(request(port, "POST", "/api/v1/notes", headers, body))["id"])
    return ids


@dataclass(frozen=True)
class Running:
    port: int
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far (Linux /proc)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def server(script: str, env: dict[str, str], log: Path) -> Iterator[Running]:
    """Start `bench/<script> --port P` with its output in `log`; yield it once it answers."""
    port = free_port()
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, str(BENCH_DIR / script), "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(process, script, port, log)
        yield Running(port, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def pin_to_cpus(pid: int, cpus: set[int]) -> None:
    """Run every thread of process `pid` on `cpus` only; threads it starts later inherit that."""
    for thread in Path(f"/proc/{pid}/task").iterdir():
        with suppress(ProcessLookupError):  # a thread that has ended since the listing
            os.sched_setaffinity(int(thread.name), cpus)


def _wait_until_up(process: subprocess.Popen[bytes], script: str, port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{script} exited with {process.returncode}; see {log}")
        try:
            request(port, "GET", "/hello", {})
            return
        except (OSError, RuntimeError):
            time.sleep(0.2)
    raise RuntimeError(f"{script} did not answer within 60 s; see {log}")
