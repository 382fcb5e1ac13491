"""Where upload bytes live: an interface, and the local-filesystem backend (the default).

Every method streams: `append` writes chunks as they arrive and `read` yields them, so no
upload is ever held whole in memory. Keys are `<tenant id>/<upload id>`, both UUIDs, so a key
never climbs out of the root. The S3-compatible backend is in `s3_storage.py`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Protocol

import anyio

READ_CHUNK = 256 * 1024


def storage_key(tenant_id: uuid.UUID, upload_id: uuid.UUID) -> str:
    return f"{tenant_id}/{upload_id}"


class UploadStorage(Protocol):
    async def create(self, key: str) -> None:
        """Make an empty object for a new upload."""

    async def append(
        self, key: str, offset: int, chunks: AsyncIterable[bytes], progress: Progress
    ) -> None:
        """Write `chunks` from `offset`, discarding anything stored past it (the tail of an
        interrupted PATCH the database never recorded). `progress.stored` counts the bytes
        durably stored so far, also when `chunks` raises: the caller records what arrived
        before a disconnect, and the client resumes from there."""

    async def complete(self, key: str) -> None:
        """Seal the object once every byte has arrived."""

    def read(self, key: str) -> AsyncIterator[bytes]:
        """The stored bytes, in chunks."""

    async def head(self, key: str, size: int) -> bytes:
        """The first `size` bytes (at most), for sniffing the type."""

    async def delete(self, key: str) -> None:
        """Remove the object; no error when it is already gone."""


class Progress:
    """How many bytes of one PATCH are stored so far."""

    __slots__ = ("stored",)

    def __init__(self) -> None:
        self.stored = 0


class LocalStorage:
    """One file per upload under `root` (UPLOAD_DIR)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        tenant, _, upload = key.partition("/")
        # Both parts are UUIDs: parse them, so no key can name a path outside the root.
        return self.root / str(uuid.UUID(tenant)) / str(uuid.UUID(upload))

    async def create(self, key: str) -> None:
        path = anyio.Path(self._path(key))
        await path.parent.mkdir(parents=True, exist_ok=True)
        await path.touch()

    async def append(
        self, key: str, offset: int, chunks: AsyncIterable[bytes], progress: Progress
    ) -> None:
        async with await anyio.open_file(self._path(key), "r+b") as file:
            await file.truncate(offset)
            await file.seek(offset)
            try:
                async for chunk in chunks:
                    await file.write(chunk)
                    progress.stored += len(chunk)
            finally:
                await file.flush()

    async def complete(self, key: str) -> None:
        return None

    async def read(self, key: str) -> AsyncIterator[bytes]:
        async with await anyio.open_file(self._path(key), "rb") as file:
            while chunk := await file.read(READ_CHUNK):
                yield chunk

    async def head(self, key: str, size: int) -> bytes:
        async with await anyio.open_file(self._path(key), "rb") as file:
            data: bytes = await file.read(size)
            return data

    async def delete(self, key: str) -> None:
        await anyio.Path(self._path(key)).unlink(missing_ok=True)
