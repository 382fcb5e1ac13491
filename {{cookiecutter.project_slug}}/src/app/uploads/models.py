"""Table `uploads`: one row per tus upload, tenant-scoped under forced row-level security."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base

UPLOADING = "uploading"
QUARANTINED = "quarantined"
CLEAN = "clean"
INFECTED = "infected"
STATUSES = (UPLOADING, QUARANTINED, CLEAN, INFECTED)


class Upload(Base):
    __tablename__ = "uploads"
    __table_args__ = (
        CheckConstraint(
            "status IN ('uploading', 'quarantined', 'clean', 'infected')", name="status"
        ),
        CheckConstraint("received_bytes BETWEEN 0 AND length", name="received_within_length"),
        # Leads with tenant_id: counting a tenant's uploads in progress, and it covers the FK.
        Index("ix_uploads_tenant_id_status", "tenant_id", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=text("gen_random_uuid()")
    )
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String)
    content_type: Mapped[str] = mapped_column(String)
    length: Mapped[int] = mapped_column(BigInteger)
    received_bytes: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    status: Mapped[str] = mapped_column(String, server_default=text("'uploading'"))
    # Set while the upload is incomplete; NULL once complete, so the purge never touches it.
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A PATCH holds the upload until then: a second PATCH at the same time gets 409.
    writing_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    scanned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # What clamd named, for an infected file.
    signature: Mapped[str | None] = mapped_column(String)
