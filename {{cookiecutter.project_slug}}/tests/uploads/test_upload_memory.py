"""UPLOADS: a 200 MB upload is streamed to storage; the server's peak memory stays flat."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2

from app.dev.services import ServiceUrls
from app.tenants.service import NewTenant
from tests.processes import env_for, free_port, start_app, wait_for_port
from tests.uploads.tus import OCTETS, TUS, metadata

MIB = 1 << 20
UPLOAD = 200 * MIB
# Far below the upload: a server that held the body would grow by 200 MiB.
ALLOWED_GROWTH = 40 * MIB


def peak_rss(pid: int) -> int:
    """The process's high-water resident set (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def _body(chunks: int) -> Iterator[bytes]:
    block = b"a" * MIB
    for _ in range(chunks):
        yield block


def _upload(http: httpx2.Client, headers: dict[str, str], size: int) -> int:
    created = http.post(
        "/api/v1/uploads",
        headers={**headers, "Upload-Length": str(size), "Upload-Metadata": metadata()},
    )
    assert created.status_code == 201, created.text
    response = http.patch(
        created.headers["location"],
        content=_body(size // MIB),
        headers={**headers, "Upload-Offset": "0", "Content-Type": OCTETS},
    )
    assert response.status_code == 204, response.text
    return int(response.headers["upload-offset"])


def test_peak_memory_stays_flat_during_a_200_mb_upload(
    service_urls: ServiceUrls, tmp_path: Path, new_tenant: Callable[[], NewTenant]
) -> None:
    """The same peak RSS, within a few MiB, after a 1 MiB upload and after a 200 MiB one."""
    tenant = new_tenant()
    port = free_port()
    env = env_for(
        service_urls,
        UPLOAD_DIR=str(tmp_path),
        UPLOAD_MAX_BYTES=str(256 * MIB),
        REQUEST_BODY_TIMEOUT="300",
        RATE_LIMIT_PER_IP="100000/minute",
        RATE_LIMIT_PER_PRINCIPAL="100000/minute",
    )
    server = start_app(["serve", "--port", str(port)], env)
    try:
        assert wait_for_port(port, server), "the service did not start"
        headers = {"Authorization": f"Bearer {tenant.api_key}", **TUS}
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as http:
            assert _upload(http, headers, MIB) == MIB  # warm: imports, pools, first request
            before = peak_rss(server.pid)
            assert _upload(http, headers, UPLOAD) == UPLOAD
            after = peak_rss(server.pid)
        assert after - before < ALLOWED_GROWTH, f"peak RSS grew by {(after - before) // MIB} MiB"
        stored = [path for path in tmp_path.rglob("*") if path.is_file()]
        assert sorted(path.stat().st_size for path in stored) == [MIB, UPLOAD]
    finally:
        server.terminate()
        try:
            server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
