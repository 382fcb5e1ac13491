"""`dev` without CLAMD_ADDRESS starts clamd with the shipped test signature (as it starts
PostgreSQL and Redis), stops it on the way out, and without clamd says so in one line and
serves anyway (uploads stay quarantined)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import pytest

from app.dev.services import ServiceUrls
from app.uploads.dev_clamd import clamd_binary
from app.uploads.scanner import ScannerUnavailableError, scan
from tests.processes import PROJECT_ROOT, env_for, free_port, wait_for_port
from tests.uploads.clamd import missing_clamd
from tests.uploads.tus import EICAR


@contextmanager
def running_dev(urls: ServiceUrls, **env: str) -> Iterator[tuple[int, list[dict[str, str]]]]:
    """`dev` on the test services (so only clamd is embedded): its port, and what it said on
    stderr before serving (JSON lines, since ENVIRONMENT=test)."""
    port = free_port()
    with tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "dev", "--port", str(port)],
            env=env_for(urls, **env),
            cwd=PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
        )
        lines: list[dict[str, str]] = []
        try:
            assert wait_for_port(port, process), "dev did not start"
            err.seek(0)
            lines.extend(
                json.loads(line) for line in err.read().splitlines() if line.startswith("{")
            )
            yield port, lines
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


def test_dev_starts_clamd_with_the_test_signature_and_stops_it(service_urls: ServiceUrls) -> None:
    if clamd_binary() is None:
        missing_clamd()
    with running_dev(service_urls) as (_, lines):
        (started,) = [line for line in lines if line.get("event") == "dev_clamd_started"]
        address = started["clamd_address"]
        assert f"CLAMD_ADDRESS={address}" in started["message"]
        verdict = asyncio.run(scan(address, _one_chunk(EICAR), timeout=30))
        assert not verdict.clean
        assert verdict.signature is not None
        assert "Eicar" in verdict.signature
    with pytest.raises(ScannerUnavailableError):  # stopped on the way out of `dev`
        asyncio.run(scan(address, _one_chunk(b"x"), timeout=5))


def test_dev_without_clamd_says_so_once_and_serves(service_urls: ServiceUrls) -> None:
    with running_dev(service_urls, CLAMD_BINARY="") as (_, lines):
        said = [line["message"] for line in lines if "clamd" in line.get("message", "")]
    assert len(said) == 1
    assert said[0].startswith("clamd is not installed, uploads stay quarantined")
    assert "apt-get install clamav-daemon" in said[0]
