"""Tables `session_families` and `refresh_tokens` (RLS, grants and the revoke function live in
migration 0010)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base

REVOKE_REASONS = (
    "logout",
    "logout_all",
    "password_change",
    "refresh_reuse",
    "membership_removed",
)


class SessionFamily(Base):
    """One login on one device: every refresh token rotated from it shares the family, and
    revoking the family ends them all (and the access tokens naming it, at their next request)."""

    __tablename__ = "session_families"
    __table_args__ = (
        # A session needs a membership: removing the member deletes their families.
        ForeignKeyConstraint(
            ["tenant_id", "user_id"],
            ["memberships.tenant_id", "memberships.user_id"],
            name="fk_session_families_membership",
            ondelete="CASCADE",
        ),
        UniqueConstraint("tenant_id", "id", name="uq_session_families_tenant_id_id"),
        CheckConstraint(
            "revoked_reason IN (" + ", ".join(f"'{r}'" for r in REVOKE_REASONS) + ")",
            name="revoked_reason",
        ),
        Index("ix_session_families_tenant_id_user_id", "tenant_id", "user_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=text("gen_random_uuid()")
    )
    tenant_id: Mapped[uuid.UUID] = mapped_column()
    user_id: Mapped[uuid.UUID] = mapped_column()
    # SHA-256 of the `__Host-device` cookie this family's refresh tokens are bound to.
    device_hash: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(String)


class RefreshToken(Base):
    """A refresh token, by the SHA-256 of its secret. `used_at` is set when it is rotated."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "family_id"],
            ["session_families.tenant_id", "session_families.id"],
            name="fk_refresh_tokens_family",
            ondelete="CASCADE",
        ),
        Index("ix_refresh_tokens_tenant_id_family_id", "tenant_id", "family_id"),
    )

    token_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column()
    family_id: Mapped[uuid.UUID] = mapped_column()
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
