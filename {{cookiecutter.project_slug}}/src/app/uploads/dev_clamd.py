"""clamd for `dev` and the tests, loaded with the shipped test signature (EICAR) only.

Development only, like the embedded PostgreSQL and Redis: ClamAV's signature database cannot be
downloaded everywhere, so this clamd knows one signature, `signatures/test-eicar.hdb` (the EICAR
test file's MD5), enough to prove the quarantine end to end. Production points CLAMD_ADDRESS at
a real clamd with freshclam's database. ClamAV is not pip-installable: without the `clamd`
binary (Debian `clamav-daemon`), `clamd_binary()` is None and callers say how to install it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from app.commands.exits import say

SIGNATURES = Path(__file__).resolve().parent / "signatures"
DEBIAN_CLAMD = "/usr/sbin/clamd"
INSTALL_HINT = "install ClamAV's daemon: `sudo apt-get install clamav-daemon` (Debian/Ubuntu)"


def clamd_binary() -> str | None:
    """`CLAMD_BINARY` when set (empty: act as if clamd were not installed, to try what a fresh
    laptop sees), else `clamd` on PATH or Debian's /usr/sbin/clamd (often not on a user's PATH)."""
    configured = os.environ.get("CLAMD_BINARY")
    if configured is not None:
        return shutil.which(configured) if configured else None
    return shutil.which("clamd") or shutil.which(DEBIAN_CLAMD)


def _answers(sock_path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as probe:
            probe.settimeout(1)
            probe.connect(str(sock_path))
            probe.sendall(b"zPING\0")
            return probe.recv(16).startswith(b"PONG")
    except OSError:
        return False


@contextmanager
def embedded_clamd(ready_within: float = 60.0) -> Iterator[str]:
    """Run clamd on a private Unix socket until the block ends; yields `unix:///...sock`."""
    binary = clamd_binary()
    if binary is None:
        raise RuntimeError(f"clamd is not installed; {INSTALL_HINT}")
    # A short folder: a Unix socket path is limited to about 100 characters.
    root = Path(tempfile.mkdtemp(prefix="clamd-"))
    sock_path = root / "clamd.sock"
    config = root / "clamd.conf"
    config.write_text(
        f"Foreground yes\nDatabaseDirectory {SIGNATURES}\nLocalSocket {sock_path}\n"
        f"PidFile {root / 'clamd.pid'}\nLogFile {root / 'clamd.log'}\nTemporaryDirectory {root}\n"
        "StreamMaxLength 4000M\nMaxFileSize 4000M\nMaxScanSize 4000M\n"
    )
    process = subprocess.Popen(  # noqa: S603 - the clamd binary and a config file we wrote
        [binary, "--config-file", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + ready_within
        while not _answers(sock_path):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"clamd did not start; see {root / 'clamd.log'}")
            time.sleep(0.1)
        yield f"unix://{sock_path}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


def clamd_for_dev(services: ExitStack) -> str | None:
    """For `dev` without CLAMD_ADDRESS: clamd with the test signature until `services` closes;
    its address. Without clamd, one line says so and `dev` goes on (uploads stay quarantined).
    `dev` runs no worker: the line names the address a `worker` beside it scans with."""
    if clamd_binary() is None:
        say(f"clamd is not installed, uploads stay quarantined: {INSTALL_HINT}", level="warning")
        return None
    try:
        address = services.enter_context(embedded_clamd())
    except RuntimeError as error:
        say(f"{error}; uploads stay quarantined", level="warning")
        return None
    say(
        f"clamd (test signature only) at {address}: scan uploads with a `worker` started with "
        f"CLAMD_ADDRESS={address}",
        event="dev_clamd_started",
        level="info",
        clamd_address=address,
    )
    return address
