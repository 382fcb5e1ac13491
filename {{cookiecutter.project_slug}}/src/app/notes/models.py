"""Table `notes`: tenant-scoped, soft-deleted, versioned for ETags."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class Note(Base):
    __tablename__ = "notes"
    __table_args__ = (
        CheckConstraint("char_length(title) BETWEEN 1 AND 200", name="title_length"),
        CheckConstraint("char_length(body) <= 20000", name="body_length"),
        CheckConstraint("format IN ('text', 'html')", name="format"),
        # Leads with tenant_id: every list query is tenant-scoped, and it also covers the FK.
        Index("ix_notes_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=text("gen_random_uuid()")
    )
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String)
    body: Mapped[str] = mapped_column(String, server_default="")
    # `html` bodies are sanitized before they are stored (docs/notes.md).
    format: Mapped[str] = mapped_column(String, server_default=text("'text'"))
    version: Mapped[int] = mapped_column(BigInteger, server_default=text("1"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Filled in the background by the `notes.count_words` task.
    word_count: Mapped[int | None] = mapped_column(BigInteger)
