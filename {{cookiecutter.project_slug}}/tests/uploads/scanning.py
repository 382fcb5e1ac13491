"""Helpers of the scanning tests: an app on the worker's queue, and waiting for a verdict."""

from __future__ import annotations

import asyncio
import time

import httpx2
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.tenants.service import NewTenant
from tests.uploads.tus import auth, create, patch


def upload_whole(client: TestClient, tenant: NewTenant, data: bytes, filetype: str) -> str:
    location = create(client, tenant, len(data), "file.bin", filetype)
    assert patch(client, tenant, location, 0, data) == 204
    return location


def wait_for_verdict(
    client: TestClient, tenant: NewTenant, location: str, seconds: float = 60.0
) -> int:
    """Poll the download until it is no longer refused as quarantined; its status."""
    deadline = time.monotonic() + seconds
    while True:
        response = client.get(f"{location}/content", headers=auth(tenant))
        quarantined = (
            response.status_code == 409 and response.json()["upload_status"] == "quarantined"
        )
        if not quarantined or time.monotonic() > deadline:
            return response.status_code
        time.sleep(0.2)


def download_once_clean(base_url: str, tenant: NewTenant, url: str, seconds: float = 120) -> bytes:
    """The upload at `url` from a running `serve`, polled until its scan let it out (a loaded
    CI machine scans 20 MiB slowly)."""
    headers = {"Authorization": f"Bearer {tenant.api_key}"}
    with httpx2.Client(base_url=base_url, headers=headers, timeout=30) as http:
        deadline = time.monotonic() + seconds
        while (response := http.get(f"{url.removeprefix(base_url)}/content")).status_code == 409:
            assert time.monotonic() < deadline, "the upload was never scanned"
            time.sleep(0.3)
    assert response.status_code == 200, response.text
    return response.content


def dead_letters_for(owner_url: str, upload_id: str) -> int:
    """How many dead letters the scan of `upload_id` left (read as the owner, all tenants)."""

    async def count() -> int:
        engine = create_async_engine(owner_url)
        try:
            async with engine.connect() as connection:
                found = await connection.scalar(
                    text(
                        "SELECT count(*) FROM dead_letters WHERE task_name = 'uploads.scan' "
                        "AND args ->> 0 = :id"
                    ),
                    {"id": upload_id},
                )
                return int(found or 0)
        finally:
            await engine.dispose()

    return asyncio.run(count())
