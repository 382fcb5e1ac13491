"""Start the console script as a real process, the way an operator does."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from app.dev.services import ServiceUrls

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def short_tmp_dir(prefix: str) -> Iterator[Path]:
    """A fresh folder directly under /tmp, removed afterwards, for servers' data and sockets.

    Short, since a Unix socket path is limited to about 100 bytes. And not under pytest's own
    temporary folder: every pytest session that starts (tests/uploads/test_missing_clamd.py runs
    some, CI runs suites side by side) sets /tmp/pytest-of-<user> back to 0700, and as root the
    embedded PostgreSQL runs as the `pgserver` user, which then loses its data directory.
    """
    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def pytest_sessions_starting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """What other pytest sessions do while the block runs (tests/uploads/test_missing_clamd.py
    starts some): each sets pytest's per-user temporary folder back to 0700. A server that must
    survive them lives in `short_tmp_dir`."""
    folders = [p for p in tmp_path_factory.getbasetemp().parents if p.name.startswith("pytest-of-")]
    stop = threading.Event()

    def close_again() -> None:
        while not stop.wait(0.1):
            for folder in folders:
                folder.chmod(folder.stat().st_mode & 0o700)

    closer = threading.Thread(target=close_again)
    closer.start()
    try:
        yield
    finally:
        stop.set()
        closer.join()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def port_is_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def service_env(**values: str) -> dict[str, str]:
    """The current environment minus the service's own variables, plus `values`."""
    own = ("ENVIRONMENT", "DATABASE_", "REDIS_URL", "SECRET_KEY", "SUPPORT_URL", "LOG_")
    env = {name: value for name, value in os.environ.items() if not name.startswith(own)}
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(PROJECT_ROOT / "src"), env.get("PYTHONPATH")])
    )
    env.update(values)
    return env


def env_for(urls: ServiceUrls, **values: str) -> dict[str, str]:
    """`service_env` for ENVIRONMENT=test on these services: both database roles and Redis."""
    return service_env(
        ENVIRONMENT="test",
        DATABASE_URL=urls.runtime_database_url,
        DATABASE_OWNER_URL=urls.owner_database_url,
        REDIS_URL=urls.redis_url,
        **values,
    )


def start_app(args: list[str], env: Mapping[str, str]) -> subprocess.Popen[str]:
    """`python -m app ARGS` with output captured as text."""
    return subprocess.Popen(
        [sys.executable, "-m", "app", *args],
        env=dict(env),
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_port(port: int, process: subprocess.Popen[str], seconds: float = 60.0) -> bool:
    """Whether `process` listens on `port` before it exits or `seconds` pass.

    Generous by default: uvicorn listens only once a worker has imported the app and run its
    lifespan, which on a loaded two-CPU CI machine has taken over 20 s.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if port_is_open(port):
            return True
        time.sleep(0.05)
    return False


def failed_start(process: subprocess.Popen[str]) -> str:
    """What a process that never listened printed. It is stopped first: reading the pipes of a
    live process (or of its workers) would wait for ever."""
    process.send_signal(signal.SIGTERM)
    try:
        out, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        try:  # a killed parent's workers may still hold the pipes open
            out, err = process.communicate(timeout=10)
        except subprocess.TimeoutExpired as stuck:
            return f"no output: the process ignored SIGTERM and its pipes stayed open ({stuck})"
    return out + err
