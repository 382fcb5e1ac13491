"""Uploads use cases: create, append, inspect, terminate, download. Never builds HTTP responses.

A PATCH holds its upload with a short lease in the database (not a transaction: a transaction
may not stay open while a client sends megabytes), streams the body to storage, and records
what was stored in a second transaction, also when the client disconnects half way: the client
then resumes from that offset. The PATCH that stores the last byte moves the upload to
quarantine and queues its scan in the same transaction (the outbox).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.db.session import Database
from app.http.errors import ConflictError, ContentTooLargeError, NotFoundError
from app.uploads import repository
from app.uploads.content_types import (
    SNIFF_BYTES,
    UploadTypeRefusedError,
    check_declared,
    check_sniffed,
)
from app.uploads.models import CLEAN, UPLOADING, Upload
from app.uploads.protocol import (
    TooManyUploadsError,
    UploadGoneError,
    UploadMetadata,
    UploadNotReadyError,
    check_offset,
)
from app.uploads.settings import UploadSettings
from app.uploads.storage import Progress, UploadStorage, storage_key
from app.uploads.tasks import SCAN_TASK
from app.worker.outbox import enqueue

NOT_FOUND = "No upload with this id exists."
# How long past the body deadline a PATCH's hold outlives a crashed process.
LEASE_MARGIN = timedelta(seconds=30)
_NOW = select(func.now())


def too_large(room: int) -> ContentTooLargeError:
    return ContentTooLargeError(
        f"The upload has room for {room} more bytes; this request sends more.", limit_bytes=room
    )


async def _bounded(chunks: AsyncIterable[bytes], room: int) -> AsyncIterator[bytes]:
    """`chunks`, refused with 413 the moment they pass `room` bytes (a chunked body)."""
    received = 0
    async for chunk in chunks:
        received += len(chunk)
        if received > room:
            raise too_large(room)
        yield chunk


async def _with_head(head: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if head:
        yield head
    async for chunk in rest:
        yield chunk


@dataclass(frozen=True)
class UploadsService:
    database: Database
    storage: UploadStorage
    settings: UploadSettings
    body_timeout: float
    # Wakes the outbox relay once a transaction that queued a scan has committed.
    after_commit: Callable[[], None] = lambda: None

    @property
    def expires_in(self) -> timedelta:
        return timedelta(hours=self.settings.upload_expiry_hours)

    async def create(self, principal: Principal, length: int, metadata: UploadMetadata) -> Upload:
        """A new empty upload: 413 over UPLOAD_MAX_BYTES, 415 for a type not allowed, 409 when
        the tenant already has UPLOAD_MAX_CONCURRENT uploads in progress."""
        if length > self.settings.upload_max_bytes:
            raise too_large(self.settings.upload_max_bytes)
        check_declared(metadata.content_type, self.settings.upload_allowed_types)
        if length == 0:  # complete at creation: its (empty) bytes must fit the type now
            check_sniffed(metadata.content_type, b"")
        limit = self.settings.upload_max_concurrent

        async def work(session: AsyncSession) -> Upload:
            if await repository.in_progress(session, principal.tenant_id) >= limit:
                raise TooManyUploadsError(
                    f"The tenant has {limit} uploads in progress; finish or terminate one first.",
                    limit=limit,
                )
            upload = await repository.insert(
                session,
                principal.tenant_id,
                metadata.filename,
                metadata.content_type,
                length,
                self.expires_in,
            )
            await self.storage.create(storage_key(upload.tenant_id, upload.id))
            if length == 0:  # tus clients send no PATCH for an empty file: complete it now
                upload = await self._record_in(session, upload, 0) or upload
            return upload

        created = await self.database.run(work, principal.tenant_id)
        if created.status != UPLOADING:
            self.after_commit()
        return created

    async def get(self, principal: Principal, upload_id: uuid.UUID) -> Upload:
        """The upload; 404 for an unknown id (another tenant's included), 410 once expired."""

        async def work(session: AsyncSession) -> tuple[Upload | None, bool]:
            upload = await repository.get(session, principal.tenant_id, upload_id)
            return upload, upload is not None and await _expired(session, upload)

        upload, expired = await self.database.run(work, principal.tenant_id)
        if upload is None:
            raise NotFoundError(NOT_FOUND)
        if expired:
            raise UploadGoneError("The upload expired before it was complete; start a new one.")
        return upload

    async def append(
        self,
        principal: Principal,
        upload_id: uuid.UUID,
        offset: int,
        announced: int | None,
        chunks: AsyncIterable[bytes],
    ) -> Upload:
        """Store `chunks` at `offset` and return the upload with its new offset."""
        upload = await self._claim(principal, upload_id, offset, announced)
        key = storage_key(upload.tenant_id, upload.id)
        body = _bounded(chunks, upload.length - offset)
        progress = Progress()
        try:
            head = await self._read_head(upload, offset, body)
            if offset + len(head) >= min(upload.length, SNIFF_BYTES) > offset:
                await self._check_type(upload, key, offset, head)
            await self.storage.append(key, offset, _with_head(head, body), progress)
        except UploadTypeRefusedError:
            raise  # the upload is gone: nothing to record
        except BaseException:
            # A disconnect, a timeout, a refusal: record what was stored, so the client
            # resumes from there; the hold is released either way.
            await self._record(upload, offset + progress.stored)
            raise
        recorded = await self._record(upload, offset + progress.stored)
        if recorded is None:  # terminated meanwhile
            raise NotFoundError(NOT_FOUND)
        return recorded

    async def _claim(
        self, principal: Principal, upload_id: uuid.UUID, offset: int, announced: int | None
    ) -> Upload:
        upload = await self.get(principal, upload_id)
        if upload.status != UPLOADING:
            check_offset(offset, upload.received_bytes)
            raise ConflictError("The upload is already complete.")
        check_offset(offset, upload.received_bytes)
        if announced is not None and announced > upload.length - offset:
            raise too_large(upload.length - offset)
        lease = timedelta(seconds=self.body_timeout) + LEASE_MARGIN

        async def work(session: AsyncSession) -> bool:
            return await repository.claim_for_write(
                session, principal.tenant_id, upload_id, offset, lease
            )

        if not await self.database.run(work, principal.tenant_id):
            raise ConflictError(
                "Another request is writing to this upload; HEAD it and resume from its offset."
            )
        return upload

    @staticmethod
    async def _read_head(upload: Upload, offset: int, body: AsyncIterator[bytes]) -> bytes:
        """What of `body` falls within the file's first SNIFF_BYTES, read ahead to sniff it."""
        wanted = min(upload.length, SNIFF_BYTES) - offset
        head = bytearray()
        if wanted <= 0:
            return b""
        async for chunk in body:
            head += chunk
            if len(head) >= wanted:
                break
        return bytes(head)

    async def _check_type(self, upload: Upload, key: str, offset: int, head: bytes) -> None:
        """415, and the upload removed, when the first bytes contradict the declared type."""
        stored = await self.storage.head(key, offset) if offset else b""
        try:
            check_sniffed(upload.content_type, stored + head)
        except UploadTypeRefusedError:
            await self.terminate_upload(upload)
            raise

    async def _record_in(
        self, session: AsyncSession, upload: Upload, received: int
    ) -> Upload | None:
        """Store the offset; the last byte seals the object and queues its scan (outbox)."""
        recorded = await repository.record_progress(
            session, upload.tenant_id, upload.id, received, self.expires_in
        )
        if recorded is not None and recorded.received_bytes == recorded.length:
            await self.storage.complete(storage_key(upload.tenant_id, upload.id))
            await enqueue(session, upload.tenant_id, SCAN_TASK, str(upload.id))
        return recorded

    async def _record(self, upload: Upload, received: int) -> Upload | None:
        async def work(session: AsyncSession) -> Upload | None:
            return await self._record_in(session, upload, received)

        recorded = await self.database.run(work, upload.tenant_id)
        if recorded is not None and recorded.received_bytes == recorded.length:
            self.after_commit()
        return recorded

    async def terminate(self, principal: Principal, upload_id: uuid.UUID) -> None:
        """Delete the upload and its bytes (tus termination), whatever its state."""

        async def work(session: AsyncSession) -> Upload | None:
            return await repository.get(session, principal.tenant_id, upload_id)

        upload = await self.database.run(work, principal.tenant_id)
        if upload is None:
            raise NotFoundError(NOT_FOUND)
        await self.terminate_upload(upload)

    async def terminate_upload(self, upload: Upload) -> None:
        async def work(session: AsyncSession) -> bool:
            return await repository.remove(session, upload.tenant_id, upload.id)

        # Row first: once it is gone nothing serves or scans the bytes, then remove them.
        await self.database.run(work, upload.tenant_id)
        await self.storage.delete(storage_key(upload.tenant_id, upload.id))

    async def content(
        self, principal: Principal, upload_id: uuid.UUID
    ) -> tuple[Upload, AsyncIterator[bytes]]:
        """A clean upload and its bytes; 409 for any upload not scanned clean."""
        upload = await self.get(principal, upload_id)
        if upload.status != CLEAN:
            raise UploadNotReadyError(
                f"The upload is {upload.status}; only files scanned clean can be downloaded.",
                upload_status=upload.status,
            )
        return upload, self.storage.read(storage_key(upload.tenant_id, upload.id))


async def _expired(session: AsyncSession, upload: Upload) -> bool:
    if upload.status != UPLOADING or upload.expires_at is None:
        return False
    now = await session.scalar(_NOW)
    return now is not None and upload.expires_at <= now
