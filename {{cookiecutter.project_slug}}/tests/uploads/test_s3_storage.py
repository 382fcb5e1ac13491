"""UPLOADS storage: the S3 backend against a real S3 HTTP endpoint (moto's server)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from aiobotocore.session import get_session
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.main import create_app
from app.settings import Settings
from app.tenants.service import NewTenant
from app.uploads.s3_storage import PART_SIZE, S3Storage
from app.uploads.storage import Progress
from tests.uploads.s3_server import moto_s3
from tests.uploads.tus import auth, create, patch

MIB = 1 << 20


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_s3() as endpoint:
        yield endpoint


@pytest.fixture
def s3_settings(make_settings: Callable[..., Settings], s3_endpoint: str) -> Settings:
    bucket = f"uploads-{uuid.uuid4().hex[:12]}"
    settings = make_settings(
        upload_storage="s3",
        upload_s3_bucket=bucket,
        upload_s3_endpoint_url=s3_endpoint,
        upload_s3_access_key_id=SecretStr("test"),
        upload_s3_secret_access_key=SecretStr("test"),
        upload_max_bytes=64 * MIB,
    )
    return settings


async def _s3(settings: Settings, operation: str, **arguments: Any) -> Any:
    async with get_session().create_client(
        "s3",
        region_name="us-east-1",
        endpoint_url=settings.upload_s3_endpoint_url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ) as client:
        return await getattr(client, operation)(**arguments)


@pytest.fixture
async def storage(s3_settings: Settings) -> S3Storage:
    await _s3(s3_settings, "create_bucket", Bucket=s3_settings.upload_s3_bucket)
    return S3Storage(s3_settings)


async def _chunks(data: bytes, fail_after: int | None = None) -> AsyncIterator[bytes]:
    for start in range(0, len(data), MIB):
        if fail_after is not None and start >= fail_after:
            raise ConnectionResetError("the client went away")
        yield data[start : start + MIB]


async def _read(storage: S3Storage, key: str) -> bytes:
    return b"".join([chunk async for chunk in storage.read(key)])


async def test_appends_of_any_size_become_one_object(storage: S3Storage) -> None:
    """PATCH-sized appends (under and over a part) end as one object, byte-identical."""
    data = os.urandom(2 * PART_SIZE + 3 * MIB)
    key = f"{uuid.uuid4()}/{uuid.uuid4()}"
    await storage.create(key)
    offset = 0
    for size in (3 * MIB, PART_SIZE + 2 * MIB, len(data) - 3 * MIB - PART_SIZE - 2 * MIB):
        progress = Progress()
        await storage.append(key, offset, _chunks(data[offset : offset + size]), progress)
        assert progress.stored == size
        offset += size
    assert await storage.head(key, 0) == b""
    await storage.complete(key)
    assert await _read(storage, key) == data


async def test_an_interrupted_append_keeps_what_arrived(storage: S3Storage) -> None:
    """A stream that breaks half way stores what came (parts and tail); resuming completes it."""
    data = os.urandom(PART_SIZE + 4 * MIB)
    key = f"{uuid.uuid4()}/{uuid.uuid4()}"
    await storage.create(key)
    progress = Progress()
    with pytest.raises(ConnectionResetError):
        await storage.append(key, 0, _chunks(data, fail_after=PART_SIZE + MIB), progress)
    assert progress.stored == PART_SIZE + MIB
    resumed = Progress()
    await storage.append(key, progress.stored, _chunks(data[progress.stored :]), resumed)
    assert resumed.stored == len(data) - progress.stored
    await storage.complete(key)
    assert await _read(storage, key) == data


async def test_delete_leaves_nothing_behind(storage: S3Storage, s3_settings: Settings) -> None:
    """Termination aborts the multipart upload and removes the tail and the object."""
    key = f"{uuid.uuid4()}/{uuid.uuid4()}"
    await storage.create(key)
    await storage.append(key, 0, _chunks(os.urandom(PART_SIZE + MIB)), Progress())
    await storage.delete(key)
    bucket = s3_settings.upload_s3_bucket
    assert (await _s3(s3_settings, "list_objects_v2", Bucket=bucket)).get("Contents", []) == []
    pending = await _s3(s3_settings, "list_multipart_uploads", Bucket=bucket)
    assert pending.get("Uploads", []) == []


def test_tus_over_the_s3_backend(
    storage: S3Storage, s3_settings: Settings, alice: NewTenant
) -> None:
    """The tus routes work unchanged on UPLOAD_STORAGE=s3."""
    app: FastAPI = create_app(s3_settings)
    with TestClient(app) as client:
        data = b"hello from s3, " * 1000
        location = create(client, alice, len(data))
        assert patch(client, alice, location, 0, data[:5000]) == 204
        assert patch(client, alice, location, 5000, data[5000:]) == 204
        head = client.head(location, headers=auth(alice))
        assert head.headers["upload-offset"] == str(len(data))
