"""Start, watch and stop the processes a demo starts, including the daemons it leaves behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil


def answers_200(url: str) -> bool:
    """True when a GET of `url` answers 200 right now."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (a local http URL)
            status: int = response.status
            return status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def wait_until_ready(url: str, process: subprocess.Popen[bytes], seconds: float) -> bool:
    """Poll `url` until it answers 200; False if `process` exits first or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if answers_200(url):
            return True
        time.sleep(0.25)
    return False


def processes_in(folder: Path) -> dict[int, str]:
    """Running processes whose working directory is `folder` or below it, as pid → name.

    Embedded PostgreSQL runs from its data directory and Redis from its database's folder, and
    both detach from whoever started them: their working directory is how to find them.
    """
    root = folder.resolve()
    found: dict[int, str] = {}
    for process in psutil.process_iter(["pid", "name", "cwd"]):
        cwd = process.info["cwd"]
        if cwd and (Path(cwd) == root or root in Path(cwd).parents):
            found[process.info["pid"]] = process.info["name"]
    return found


def processes_in_group(group: int) -> list[int]:
    """Pids of running processes in process group `group`."""
    pids: list[int] = []
    for process in psutil.process_iter(["pid", "status"]):
        try:
            if process.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(process.pid) == group:
                pids.append(process.pid)
        except ProcessLookupError:
            continue
    return pids


def wait_until_gone(folder: Path, seconds: float) -> dict[int, str]:
    """Wait for every process under `folder` to exit; return the ones still running."""
    deadline = time.monotonic() + seconds
    while (left := processes_in(folder)) and time.monotonic() < deadline:
        time.sleep(0.25)
    return left


def kill_all(pids: list[int]) -> None:
    """SIGKILL `pids`, ignoring those already gone (clean-up after a failed test)."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
