"""UPLOADS + DATA-LIFECYCLE: an incomplete upload expires (410), and the retention purge
removes it with its stored bytes; complete uploads never expire."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.lifecycle.tasks import purge_now
from app.tenants.service import NewTenant
from tests.uploads.tus import auth, create, patch, stored_files

SECOND_IN_HOURS = 1 / 3600


def test_expired_partial_upload_is_410_then_purged_with_its_bytes(
    upload_app: Callable[..., FastAPI], alice: NewTenant, upload_dir: Path
) -> None:
    """Past UPLOAD_EXPIRY_HOURS an incomplete upload answers 410; the purge deletes its row and
    its bytes, and leaves the complete upload beside it alone."""
    app = upload_app(upload_expiry_hours=SECOND_IN_HOURS)
    with TestClient(app) as client:
        partial = create(client, alice, 10)
        assert patch(client, alice, partial, 0, b"half") == 204
        complete = create(client, alice, 4)
        assert patch(client, alice, complete, 0, b"full") == 204
        time.sleep(1.2)
        expired = client.patch(
            partial,
            content=b"rest",
            headers={
                **auth(alice),
                "Upload-Offset": "4",
                "Content-Type": "application/offset+octet-stream",
            },
        )
        assert expired.status_code == 410
        assert expired.headers["content-type"] == "application/problem+json"
        assert len(stored_files(upload_dir)) == 2

        deleted = asyncio.run(purge_now(app.state.settings))
        assert deleted is not None
        assert deleted["uploads"] >= 1
        assert client.head(partial, headers=auth(alice)).status_code == 404
        assert client.head(complete, headers=auth(alice)).status_code == 200
        assert [path.name for path in stored_files(upload_dir)] == [complete.rsplit("/", 1)[1]]
