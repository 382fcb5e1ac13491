"""Transactional outbox, notes.word_count (filled by a task), and owner purge on notes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-01-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app.db.migration_ops import (
    enable_owner_purge,
    enable_tenant_rls,
    grant_to_runtime,
    runtime_role,
)

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")
CLAIM = "outbox_claim(integer)"
MARK = "outbox_mark_relayed(uuid[])"


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Uuid(), primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column(
            "tenant_id", sa.Uuid(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("task_name", sa.String(), nullable=False),
        sa.Column("args", postgresql.JSONB(), nullable=False),
        sa.Column("kwargs", postgresql.JSONB(), nullable=False),
        sa.Column("headers", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("relayed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_outbox_tenant_id_created_at", "outbox", ["tenant_id", "created_at"])
    enable_tenant_rls("outbox")
    op.execute("CREATE POLICY owner_all ON outbox TO CURRENT_USER USING (true) WITH CHECK (true)")
    grant_to_runtime("outbox", "INSERT")
    # The relay works across tenants, so it claims and marks rows through these two functions,
    # which run as the owner; the runtime role still cannot read anyone's outbox rows directly.
    op.execute(
        f"""
        CREATE FUNCTION {CLAIM.replace("integer", "p_limit integer")}
        RETURNS SETOF outbox LANGUAGE sql SECURITY DEFINER
        SET search_path = pg_catalog, public
        AS $$
            SELECT * FROM public.outbox WHERE relayed_at IS NULL
            ORDER BY created_at LIMIT p_limit FOR UPDATE SKIP LOCKED
        $$
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION {MARK.replace("uuid[]", "p_ids uuid[]")}
        RETURNS void LANGUAGE sql SECURITY DEFINER
        SET search_path = pg_catalog, public
        AS $$ UPDATE public.outbox SET relayed_at = now() WHERE id = ANY(p_ids) $$
        """
    )
    for function in (CLAIM, MARK):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {runtime_role()}")
    # Expand step of an online change: a nullable column, no default, no table rewrite.
    op.add_column("notes", sa.Column("word_count", sa.BigInteger(), nullable=True))
    enable_owner_purge("notes")


def downgrade() -> None:
    op.execute("DROP POLICY IF EXISTS owner_purge ON notes")
    op.execute("DROP POLICY IF EXISTS owner_purge_read ON notes")
    op.drop_column("notes", "word_count")
    op.execute(f"DROP FUNCTION IF EXISTS {MARK}")
    op.execute(f"DROP FUNCTION IF EXISTS {CLAIM}")
    op.drop_table("outbox")
