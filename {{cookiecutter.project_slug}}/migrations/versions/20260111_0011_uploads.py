"""Uploads: tus resumable uploads, quarantined until scanned (UPLOADS).

Revision ID: 0011
Revises: 0010
Create Date: 2026-01-11
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.migration_ops import enable_owner_purge, enable_tenant_rls, grant_to_runtime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("id", sa.Uuid(), primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column(
            "tenant_id", sa.Uuid(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("filename", sa.String(), nullable=False),
        sa.Column("content_type", sa.String(), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("received_bytes", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("status", sa.String(), nullable=False, server_default=sa.text("'uploading'")),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("writing_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signature", sa.String(), nullable=True),
        sa.CheckConstraint(
            "status IN ('uploading', 'quarantined', 'clean', 'infected')", name="ck_uploads_status"
        ),
        sa.CheckConstraint(
            "received_bytes BETWEEN 0 AND length", name="ck_uploads_received_within_length"
        ),
    )
    op.create_index("ix_uploads_tenant_id_status", "uploads", ["tenant_id", "status"])
    enable_tenant_rls("uploads")
    enable_owner_purge("uploads")
    grant_to_runtime("uploads")


def downgrade() -> None:
    op.drop_table("uploads")
