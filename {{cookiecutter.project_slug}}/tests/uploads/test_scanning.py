"""UPLOADS: a completed upload is quarantined until the real clamd scans it (real worker)."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tusclient.client import TusClient

from app.dev.services import ServiceUrls
from app.main import create_app
from app.settings import Settings
from app.tenants.service import NewTenant
from tests.faults.traffic import running_service
from tests.uploads.scanning import download_once_clean, upload_whole, wait_for_verdict
from tests.uploads.tus import EICAR, auth, create, stored_files
from tests.uploads.tus_js import upload_with_tus_js
from tests.worker.conftest import worker, worker_env

__all__ = ["worker", "worker_env"]
MIB = 1 << 20


def bearer(tenant: NewTenant) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant.api_key}"}


@pytest.fixture(scope="module")
def scan_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scanned-uploads")


@pytest.fixture(scope="module")
def worker_extra_env(scan_dir: Path, clamd_address: str) -> dict[str, str]:
    """The worker reads the uploads' folder and scans with the test clamd."""
    return {"UPLOAD_DIR": str(scan_dir), "CLAMD_ADDRESS": clamd_address}


@pytest.fixture
def scanning_client(
    make_settings: Callable[..., Settings],
    scan_dir: Path,
    worker_env: dict[str, str],
    worker: object,
) -> Iterator[TestClient]:
    settings = make_settings(upload_dir=scan_dir, task_queue=worker_env["TASK_QUEUE"])
    with TestClient(create_app(settings)) as client:
        yield client


def test_clean_file_downloads_only_after_its_scan(
    scanning_client: TestClient, alice: NewTenant
) -> None:
    """Quarantined first (409), then clean: streamed back byte-identical, as an attachment."""
    data = os.urandom(150_000).hex().encode()
    location = upload_whole(scanning_client, alice, data, "text/plain")
    early = scanning_client.get(f"{location}/content", headers=auth(alice))
    assert early.status_code == 409
    assert early.json()["upload_status"] in {"quarantined", "clean"}
    assert wait_for_verdict(scanning_client, alice, location) == 200
    response = scanning_client.get(f"{location}/content", headers=auth(alice))
    assert response.content == data
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"file.bin\"; filename*=UTF-8''file.bin"
    )


def test_an_empty_file_is_scanned_and_downloads_empty(
    scanning_client: TestClient, alice: NewTenant
) -> None:
    """Upload-Length 0 completes at creation, with no PATCH: it is scanned like any file."""
    location = create(scanning_client, alice, 0, "empty.txt")
    assert wait_for_verdict(scanning_client, alice, location) == 200
    response = scanning_client.get(f"{location}/content", headers=auth(alice))
    assert response.content == b""


def test_eicar_is_flagged_and_never_downloadable(
    scanning_client: TestClient, alice: NewTenant, scan_dir: Path
) -> None:
    """The real clamd finds the EICAR test file: infected, its bytes deleted, 409 forever."""
    location = upload_whole(scanning_client, alice, EICAR, "text/plain")
    assert wait_for_verdict(scanning_client, alice, location) == 409
    refused = scanning_client.get(f"{location}/content", headers=auth(alice))
    assert refused.json()["upload_status"] == "infected"
    upload_id = location.rsplit("/", 1)[1]
    assert upload_id not in [path.name for path in stored_files(scan_dir)]


def test_tuspy_resumes_an_interrupted_20_mb_upload(
    scan_dir: Path,
    worker_env: dict[str, str],
    worker: object,
    clamd_address: str,
    service_urls: ServiceUrls,
    alice: NewTenant,
) -> None:
    """A real tus client (tuspy) against a real `serve`: stopped half way, a new uploader
    resumes from the server's offset, and the file scanned clean downloads byte-identical."""
    data = os.urandom(10 * MIB).hex().encode()  # 20 MiB of text
    env = {"UPLOAD_DIR": str(scan_dir), "TASK_QUEUE": worker_env["TASK_QUEUE"]}
    with running_service(service_urls, **env) as service:
        tus = TusClient(f"{service.base_url}/api/v1/uploads", headers=bearer(alice))
        metadata = {"filename": "big.txt", "filetype": "text/plain"}
        first = tus.uploader(file_stream=io.BytesIO(data), chunk_size=MIB, metadata=metadata)
        first.upload(stop_at=len(data) // 2)
        assert first.url is not None
        resumed = tus.uploader(file_stream=io.BytesIO(data), chunk_size=MIB, url=first.url)
        assert resumed.get_offset() == len(data) // 2
        resumed.upload()
        assert download_once_clean(service.base_url, alice, first.url) == data


def test_tus_js_client_resumes_an_interrupted_20_mb_upload(
    scan_dir: Path,
    worker_env: dict[str, str],
    worker: object,
    clamd_address: str,
    service_urls: ServiceUrls,
    alice: NewTenant,
    tmp_path: Path,
) -> None:
    """tus-js-client (npm) under Node against a real `serve`: aborted half way, a new Upload
    asks the server's offset (HEAD) and sends only the rest; scanned clean, byte-identical."""
    data = os.urandom(10 * MIB).hex().encode()  # 20 MiB of text
    source = tmp_path / "browser.txt"
    source.write_bytes(data)
    env = {"UPLOAD_DIR": str(scan_dir), "TASK_QUEUE": worker_env["TASK_QUEUE"]}
    with running_service(service_urls, **env) as service:
        endpoint = f"{service.base_url}/api/v1/uploads"
        report = upload_with_tus_js(endpoint, source, alice.api_key, chunk_size=2 * MIB)
        first_patches = [int(offset) for method, offset in report["first"] if method == "PATCH"]
        assert report["first"][0] == ["POST", None]
        assert max(first_patches) < len(data) // 2  # stopped half way
        assert report["resumed"][0] == ["HEAD", None]
        resumed = [int(offset) for method, offset in report["resumed"] if method == "PATCH"]
        assert resumed[0] == len(data) // 2  # from the server's offset, not from 0
        assert download_once_clean(service.base_url, alice, report["url"]) == data
