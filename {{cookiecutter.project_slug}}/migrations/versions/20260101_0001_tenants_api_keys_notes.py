"""Tenants, API keys and notes, each under forced row-level security.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

from app.db.migration_ops import (
    enable_tenant_rls,
    grant_to_runtime,
    runtime_role,
)

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UUID = sa.Uuid()
NOW = sa.text("now()")


def _timestamp(name: str, nullable: bool = False) -> sa.Column[datetime]:
    default = None if nullable else NOW
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, server_default=default)


def _create_tenants() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", UUID, primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("name", sa.String(), nullable=False),
        _timestamp("created_at"),
        sa.CheckConstraint("char_length(name) BETWEEN 1 AND 200", name="name_length"),
    )
    # A tenant sees only its own row: the policy compares `id`, not a tenant_id column.
    enable_tenant_rls("tenants", tenant_column="id")
    grant_to_runtime("tenants", "SELECT")


def _create_api_keys() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", UUID, primary_key=True),
        sa.Column(
            "tenant_id", UUID, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(), nullable=False),
        _timestamp("created_at"),
        _timestamp("revoked_at", nullable=True),
    )
    op.create_index("ix_api_keys_tenant_id", "api_keys", ["tenant_id"])
    enable_tenant_rls("api_keys")
    # The runtime role gets no privilege on api_keys at all: it can never list keys. It may only
    # ask this function "which tenant holds key ID with this hash?", which runs as the owner.
    op.execute("CREATE POLICY api_key_lookup ON api_keys FOR SELECT TO CURRENT_USER USING (true)")
    op.execute(
        """
        CREATE FUNCTION authenticate_api_key(p_key_id uuid, p_secret_hash bytea)
        RETURNS uuid
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, public
        AS $$
            SELECT tenant_id FROM public.api_keys
            WHERE id = p_key_id AND secret_hash = p_secret_hash AND revoked_at IS NULL
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION authenticate_api_key(uuid, bytea) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION authenticate_api_key(uuid, bytea) TO {runtime_role()}")


def _create_notes() -> None:
    op.create_table(
        "notes",
        sa.Column("id", UUID, primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column(
            "tenant_id", UUID, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("body", sa.String(), nullable=False, server_default=""),
        sa.Column("version", sa.BigInteger(), nullable=False, server_default=sa.text("1")),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        _timestamp("deleted_at", nullable=True),
        sa.CheckConstraint("char_length(title) BETWEEN 1 AND 200", name="title_length"),
        sa.CheckConstraint("char_length(body) <= 20000", name="body_length"),
    )
    # A new, empty table: a plain CREATE INDEX locks nothing anyone waits for. Indexes on
    # existing tables use migration_ops.create_index_concurrently.
    op.create_index("ix_notes_tenant_id_created_at_id", "notes", ["tenant_id", "created_at", "id"])
    enable_tenant_rls("notes")
    grant_to_runtime("notes")


def upgrade() -> None:
    op.execute(f"GRANT USAGE ON SCHEMA public TO {runtime_role()}")
    _create_tenants()
    _create_api_keys()
    _create_notes()


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS authenticate_api_key(uuid, bytea)")
    op.drop_table("notes")
    op.drop_table("api_keys")
    op.drop_table("tenants")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {runtime_role()}")
