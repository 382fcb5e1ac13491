"""Tables `users` and `memberships` (RLS, grants and login functions live in migration 0009)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base

ROLES = ("owner", "member")


class User(Base):
    """A person who logs in. Belongs to tenants through `Membership`; the runtime role sees a user
    only from a tenant it is a member of, and reads credentials through `user_login_memberships`."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("char_length(email) BETWEEN 3 AND 320", name="email_length"),
        # Unique case-insensitively: "Ann@x.io" and "ann@x.io" are one account.
        Index("uq_users_lower_email", func.lower(text("email")), unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=text("gen_random_uuid()")
    )
    email: Mapped[str] = mapped_column(String)
    # argon2id, in the PHC string format (app/auth/passwords.py).
    password_hash: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    password_changed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class Membership(Base):
    """`user_id` is a member of `tenant_id` with `role` (owner or member)."""

    __tablename__ = "memberships"
    __table_args__ = (
        PrimaryKeyConstraint("user_id", "tenant_id", name="pk_memberships"),
        CheckConstraint("role IN ('owner', 'member')", name="role"),
        # Leads with tenant_id like every tenant index, and covers the tenants FK.
        Index("ix_memberships_tenant_id_user_id", "tenant_id", "user_id"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
