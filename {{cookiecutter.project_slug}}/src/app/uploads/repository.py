"""SQL for uploads. Every query names the tenant explicitly, on top of row-level security."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import Interval, and_, bindparam, case, delete, func, or_, select, text, update
from sqlalchemy import insert as insert_statement
from sqlalchemy.ext.asyncio import AsyncSession

from app.uploads.models import QUARANTINED, UPLOADING, Upload

_GET = select(Upload).where(
    Upload.id == bindparam("upload_id"), Upload.tenant_id == bindparam("tenant_id")
)
_INSERT = (
    insert_statement(Upload)
    .values(expires_at=func.now() + bindparam("expires_in", type_=Interval))
    .returning(Upload)
)
# One tenant's creations queue on this lock for the count-then-insert: without it two
# concurrent POSTs could both see room for one more upload.
_LOCK_TENANT = text("SELECT pg_advisory_xact_lock(hashtextextended(:tenant, 1117))")
_IN_PROGRESS = select(func.count()).where(
    Upload.tenant_id == bindparam("tenant_id"),
    Upload.status == UPLOADING,
    Upload.expires_at > func.now(),
)


async def insert(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    filename: str,
    content_type: str,
    length: int,
    expires_in: timedelta,
) -> Upload:
    row = {
        "tenant_id": tenant_id,
        "filename": filename,
        "content_type": content_type,
        "length": length,
        "expires_in": expires_in,
    }
    upload: Upload = (await session.scalars(_INSERT, row)).one()
    return upload


async def in_progress(session: AsyncSession, tenant_id: uuid.UUID) -> int:
    """How many unexpired incomplete uploads the tenant has, under the tenant's creation lock."""
    await session.execute(_LOCK_TENANT, {"tenant": str(tenant_id)})
    return int(await session.scalar(_IN_PROGRESS, {"tenant_id": tenant_id}) or 0)


async def get(session: AsyncSession, tenant_id: uuid.UUID, upload_id: uuid.UUID) -> Upload | None:
    upload: Upload | None = await session.scalar(
        _GET, {"upload_id": upload_id, "tenant_id": tenant_id}
    )
    return upload


async def claim_for_write(
    session: AsyncSession, tenant_id: uuid.UUID, upload_id: uuid.UUID, offset: int, lease: timedelta
) -> bool:
    """Hold the upload for one PATCH at `offset`; False when another PATCH holds it."""
    statement = (
        update(Upload)
        .where(
            Upload.id == upload_id,
            Upload.tenant_id == tenant_id,
            Upload.status == UPLOADING,
            Upload.received_bytes == offset,
            or_(Upload.writing_until.is_(None), Upload.writing_until < func.now()),
        )
        .values(writing_until=func.now() + lease)
        .returning(Upload.id)
    )
    return (await session.execute(statement)).first() is not None


async def record_progress(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    upload_id: uuid.UUID,
    received: int,
    expires_in: timedelta,
) -> Upload | None:
    """Store the new offset and release the PATCH's hold. A complete upload goes to quarantine
    and stops expiring; an incomplete one expires `expires_in` after this write."""
    complete = Upload.length == received
    statement = (
        update(Upload)
        .where(Upload.id == upload_id, Upload.tenant_id == tenant_id, Upload.status == UPLOADING)
        .values(
            received_bytes=received,
            writing_until=None,
            updated_at=func.now(),
            status=case((complete, QUARANTINED), else_=UPLOADING),
            expires_at=case((complete, None), else_=func.now() + expires_in),
        )
        .returning(Upload)
        .execution_options(synchronize_session=False)
    )
    upload: Upload | None = await session.scalar(statement)
    return upload


async def remove(session: AsyncSession, tenant_id: uuid.UUID, upload_id: uuid.UUID) -> bool:
    statement = (
        delete(Upload)
        .where(and_(Upload.id == upload_id, Upload.tenant_id == tenant_id))
        .returning(Upload.id)
    )
    return (await session.execute(statement)).first() is not None


async def mark_scanned(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    upload_id: uuid.UUID,
    status: str,
    signature: str | None,
) -> bool:
    """Record a scan's verdict on a quarantined upload; False when it is not quarantined."""
    statement = (
        update(Upload)
        .where(Upload.id == upload_id, Upload.tenant_id == tenant_id, Upload.status == QUARANTINED)
        .values(status=status, signature=signature, scanned_at=func.now(), updated_at=func.now())
        .returning(Upload.id)
    )
    return (await session.execute(statement)).first() is not None
