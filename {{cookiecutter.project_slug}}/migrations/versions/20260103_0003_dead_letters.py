"""Dead letters: tasks that failed for good, written through a function the runtime role may call.

Revision ID: 0003
Revises: 0002
Create Date: 2026-01-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app.db.migration_ops import enable_tenant_rls, runtime_role

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("task_name", sa.String(), nullable=False),
        sa.Column("args", postgresql.JSONB(), nullable=False),
        sa.Column("kwargs", postgresql.JSONB(), nullable=False),
        sa.Column("exception_type", sa.String(), nullable=False),
        sa.Column("message", sa.String(), nullable=False),
        sa.Column("traceback", sa.String(), nullable=False),
        sa.Column("attempts", sa.BigInteger(), nullable=False),
        sa.Column("correlation_id", sa.String(), nullable=True),
        sa.Column(
            "tenant_id", sa.Uuid(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True
        ),
        sa.Column(
            "first_failed_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW
        ),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replay_count", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    )
    op.create_index("ix_dead_letters_tenant_id", "dead_letters", ["tenant_id"])
    enable_tenant_rls("dead_letters")
    # Operators (the owner role: `dlq` commands, the definer function below) see every tenant's.
    op.execute(
        "CREATE POLICY owner_all ON dead_letters TO CURRENT_USER USING (true) WITH CHECK (true)"
    )
    op.execute(
        """
        CREATE FUNCTION record_dead_letter(
            p_id text, p_task_name text, p_args jsonb, p_kwargs jsonb, p_exception_type text,
            p_message text, p_traceback text, p_attempts bigint, p_correlation_id text,
            p_tenant_id uuid
        ) RETURNS void
        LANGUAGE sql SECURITY DEFINER
        SET search_path = pg_catalog, public
        AS $$
            INSERT INTO public.dead_letters (id, task_name, args, kwargs, exception_type,
                message, traceback, attempts, correlation_id, tenant_id)
            VALUES (p_id, p_task_name, p_args, p_kwargs, p_exception_type, p_message,
                p_traceback, p_attempts, p_correlation_id, p_tenant_id)
            ON CONFLICT (id) DO UPDATE SET
                exception_type = EXCLUDED.exception_type, message = EXCLUDED.message,
                traceback = EXCLUDED.traceback, attempts = EXCLUDED.attempts,
                last_failed_at = now()
        $$
        """
    )
    signature = "record_dead_letter(text, text, jsonb, jsonb, text, text, text, bigint, text, uuid)"
    op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {runtime_role()}")


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION IF EXISTS "
        "record_dead_letter(text, text, jsonb, jsonb, text, text, text, bigint, text, uuid)"
    )
    op.drop_table("dead_letters")
