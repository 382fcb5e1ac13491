"""UPLOADS: with clamd down, a file stays quarantined; the scan is retried, then dead-lettered."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.dev.services import ServiceUrls
from app.main import create_app
from app.settings import Settings
from app.tenants.service import NewTenant
from tests.uploads.scanning import dead_letters_for, upload_whole
from tests.uploads.tus import auth
from tests.worker.conftest import worker, worker_env

__all__ = ["worker", "worker_env"]


@pytest.fixture(scope="module")
def outage_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("unscanned-uploads")


@pytest.fixture(scope="module")
def worker_extra_env(outage_dir: Path) -> dict[str, str]:
    """A clamd address nothing listens on: the scanner is down."""
    return {
        "UPLOAD_DIR": str(outage_dir),
        "CLAMD_ADDRESS": f"unix:///tmp/no-clamd-{uuid.uuid4().hex[:8]}.sock",
    }


def test_scanner_down_keeps_files_quarantined_and_dead_letters_the_scan(
    make_settings: Callable[..., Settings],
    outage_dir: Path,
    worker_env: dict[str, str],
    worker: object,
    alice: NewTenant,
    service_urls: ServiceUrls,
) -> None:
    """Never clean without a scan: the task retries (TASK_MAX_RETRIES=2 here), lands in the
    DLQ, and the file is still refused as quarantined."""
    settings = make_settings(upload_dir=outage_dir, task_queue=worker_env["TASK_QUEUE"])
    with TestClient(create_app(settings)) as client:
        location = upload_whole(client, alice, b"plain text, never scanned", "text/plain")
        upload_id = location.rsplit("/", 1)[1]
        deadline = time.monotonic() + 60
        while dead_letters_for(service_urls.owner_database_url, upload_id) == 0:
            assert time.monotonic() < deadline, "the scan was never dead-lettered"
            time.sleep(0.3)
        refused = client.get(f"{location}/content", headers=auth(alice))
        assert refused.status_code == 409
        assert refused.json()["upload_status"] == "quarantined"
