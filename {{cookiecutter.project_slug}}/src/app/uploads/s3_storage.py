"""The S3-compatible backend (AWS S3, MinIO, Ceph...), through aiobotocore (asyncio botocore).

An upload is one S3 multipart upload. S3 parts must be at least 5 MiB (but the last), and tus
chunks may be any size, so a PATCH's bytes are gathered into parts of PART_SIZE; what is left
at the end of a PATCH (less than a part) is kept in a `<key>.tail` object and read back first by
the next PATCH. So at most one part is in memory per PATCH in flight, and every byte the server
acknowledges (the offset it records) is durably in S3. Completion uploads the tail as the last
part and completes the multipart upload into `<key>`.

Tested against moto's standalone S3 server over HTTP (tests/uploads/test_s3_storage.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import ClientError

from app.uploads.settings import UploadSettings
from app.uploads.storage import READ_CHUNK, Progress

PART_SIZE = 8 << 20  # over S3's 5 MiB minimum part
_TIMEOUTS = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3})


class S3Storage:
    def __init__(self, settings: UploadSettings) -> None:
        assert settings.upload_s3_bucket is not None  # noqa: S101 - settings require it for s3
        self.bucket = settings.upload_s3_bucket
        self._session = get_session()
        self._options: dict[str, Any] = {
            "region_name": settings.upload_s3_region,
            "endpoint_url": settings.upload_s3_endpoint_url,
            "config": _TIMEOUTS,
        }
        for name, secret in (
            ("aws_access_key_id", settings.upload_s3_access_key_id),
            ("aws_secret_access_key", settings.upload_s3_secret_access_key),
        ):
            if secret is not None:
                self._options[name] = secret.get_secret_value()

    @asynccontextmanager
    async def _client(self) -> AsyncIterator[Any]:
        # A client per operation: an aiobotocore client belongs to the event loop that made it,
        # and the API, the worker and the purge each run their own loops.
        async with self._session.create_client("s3", **self._options) as client:
            yield client

    async def _multipart_id(self, client: Any, key: str) -> str:
        listed = await client.list_multipart_uploads(Bucket=self.bucket, Prefix=key)
        for item in listed.get("Uploads", []):
            if item["Key"] == key:
                return str(item["UploadId"])
        raise FileNotFoundError(key)

    async def _parts(self, client: Any, key: str, upload_id: str) -> list[dict[str, Any]]:
        listed = await client.list_parts(Bucket=self.bucket, Key=key, UploadId=upload_id)
        return [
            {"PartNumber": part["PartNumber"], "ETag": part["ETag"], "Size": part["Size"]}
            for part in listed.get("Parts", [])
        ]

    async def _tail(self, client: Any, key: str) -> bytes:
        try:
            reply = await client.get_object(Bucket=self.bucket, Key=f"{key}.tail")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return b""
            raise
        async with reply["Body"] as body:
            data: bytes = await body.read()
            return data

    async def create(self, key: str) -> None:
        async with self._client() as client:
            await client.create_multipart_upload(Bucket=self.bucket, Key=key)

    async def append(
        self, key: str, offset: int, chunks: AsyncIterable[bytes], progress: Progress
    ) -> None:
        async with self._client() as client:
            upload_id = await self._multipart_id(client, key)
            parts = await self._parts(client, key, upload_id)
            in_parts = sum(part["Size"] for part in parts)
            if in_parts > offset:
                raise ValueError(f"{key}: S3 holds {in_parts} bytes in parts, past offset {offset}")
            # The tail beyond `offset` belongs to a PATCH the database never recorded: drop it.
            buffer = bytearray((await self._tail(client, key))[: offset - in_parts])
            carried = len(buffer)  # bytes already counted by earlier PATCHes
            try:
                async for chunk in chunks:
                    buffer += chunk
                    while len(buffer) >= PART_SIZE:
                        await client.upload_part(
                            Bucket=self.bucket,
                            Key=key,
                            UploadId=upload_id,
                            PartNumber=len(parts) + 1,
                            Body=bytes(buffer[:PART_SIZE]),
                        )
                        del buffer[:PART_SIZE]  # only once S3 has the part
                        parts.append({"Size": PART_SIZE})
                        progress.stored += PART_SIZE - carried
                        carried = 0
            finally:
                # Also after a disconnect: what arrived is kept, and the client resumes after it.
                await client.put_object(Bucket=self.bucket, Key=f"{key}.tail", Body=bytes(buffer))
                progress.stored += len(buffer) - carried

    async def complete(self, key: str) -> None:
        async with self._client() as client:
            upload_id = await self._multipart_id(client, key)
            tail = await self._tail(client, key)
            parts = await self._parts(client, key, upload_id)
            if tail or not parts:
                reply = await client.upload_part(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=len(parts) + 1,
                    Body=tail,
                )
                parts.append({"PartNumber": len(parts) + 1, "ETag": reply["ETag"]})
            await client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]
                },
            )
            await client.delete_object(Bucket=self.bucket, Key=f"{key}.tail")

    async def read(self, key: str) -> AsyncIterator[bytes]:
        async with self._client() as client:
            reply = await client.get_object(Bucket=self.bucket, Key=key)
            async with reply["Body"] as body:
                while chunk := await body.read(READ_CHUNK):
                    yield chunk

    async def head(self, key: str, size: int) -> bytes:
        # Called while the upload is incomplete and under SNIFF_BYTES (< one part): the stored
        # bytes are all in the tail.
        async with self._client() as client:
            return (await self._tail(client, key))[:size]

    async def delete(self, key: str) -> None:
        async with self._client() as client:
            listed = await client.list_multipart_uploads(Bucket=self.bucket, Prefix=key)
            for item in listed.get("Uploads", []):
                if item["Key"] == key:
                    await client.abort_multipart_upload(
                        Bucket=self.bucket, Key=key, UploadId=item["UploadId"]
                    )
            for name in (key, f"{key}.tail"):
                await client.delete_object(Bucket=self.bucket, Key=name)
