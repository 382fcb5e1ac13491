"""Table `webhook_endpoints`: where a tenant wants its events delivered, and the secret to sign."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        # Leads with tenant_id: every query is tenant-scoped, and it also covers the FK.
        Index("ix_webhook_endpoints_tenant_id_created_at", "tenant_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=text("gen_random_uuid()")
    )
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String)
    # The `whsec_` secret sealed with AES-GCM (sealing.py): the worker opens it to sign. Shown to
    # the API client once, at creation. See docs/webhooks.md, "Where secrets live".
    secret: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Set when the receiver answers 410 Gone: no more deliveries.
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
