"""Tables `dead_letters` (written by `record_dead_letter`, read by `dlq`) and `outbox`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class DeadLetter(Base):
    __tablename__ = "dead_letters"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    task_name: Mapped[str] = mapped_column(String)
    args: Mapped[list[Any]] = mapped_column(JSONB)
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSONB)
    exception_type: Mapped[str] = mapped_column(String)
    message: Mapped[str] = mapped_column(String)
    traceback: Mapped[str] = mapped_column(String)
    attempts: Mapped[int] = mapped_column(BigInteger)
    correlation_id: Mapped[str | None] = mapped_column(String)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    first_failed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    last_failed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    replayed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    replay_count: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))


class OutboxRow(Base):
    """Table `outbox`: tasks waiting for their transaction's commit and the relay."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_tenant_id_created_at", "tenant_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=text("gen_random_uuid()")
    )
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    task_name: Mapped[str] = mapped_column(String)
    args: Mapped[list[Any]] = mapped_column(JSONB)
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSONB)
    headers: Mapped[dict[str, str]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Last published; `done_at` once the task has run (migration 0007, docs/worker.md).
    relayed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    publish_count: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
