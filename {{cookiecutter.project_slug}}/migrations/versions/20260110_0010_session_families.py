"""Browser sessions: one `session_families` row per login, its `refresh_tokens`, under forced RLS.

A family belongs to a membership (composite foreign key, ON DELETE CASCADE): removing a member
ends their sessions in that tenant at once. Refresh tokens are stored as SHA-256 hashes only;
the refresh cookie carries its tenant, so every lookup runs in a tenant-scoped transaction.

`revoke_user_sessions(p_user_id uuid, p_reason text)` revokes every live family of one user in
every tenant (logout-all, a password change): a SECURITY DEFINER function because the runtime
role sees one tenant per transaction. Granted to the runtime role only.

The owner reads and deletes every tenant's families and tokens (`enable_owner_purge`): the
retention job removes ended sessions (app.lifecycle.retention, docs/retention.md).

Revision ID: 0010
Revises: 0009
Create Date: 2026-01-10
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

from app.db.migration_ops import (
    enable_owner_purge,
    enable_tenant_rls,
    grant_to_runtime,
    runtime_role,
)

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UUID = sa.Uuid()
NOW = sa.text("now()")
REVOKE_USER_SESSIONS = "revoke_user_sessions(uuid, text)"
REASONS = "'logout', 'logout_all', 'password_change', 'refresh_reuse', 'membership_removed'"


def _timestamp(name: str, nullable: bool = False) -> sa.Column[datetime]:
    default = None if nullable else NOW
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, server_default=default)


def _create_session_families() -> None:
    op.create_table(
        "session_families",
        sa.Column("id", UUID, primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("tenant_id", UUID, nullable=False),
        sa.Column("user_id", UUID, nullable=False),
        sa.Column("device_hash", sa.LargeBinary(), nullable=False),
        _timestamp("created_at"),
        _timestamp("revoked_at", nullable=True),
        sa.Column("revoked_reason", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "user_id"],
            ["memberships.tenant_id", "memberships.user_id"],
            name="fk_session_families_membership",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("tenant_id", "id", name="uq_session_families_tenant_id_id"),
        sa.CheckConstraint(f"revoked_reason IN ({REASONS})", name="revoked_reason"),
    )
    # New, empty tables: a plain CREATE INDEX locks nothing anyone waits for.
    op.create_index(
        "ix_session_families_tenant_id_user_id", "session_families", ["tenant_id", "user_id"]
    )
    enable_tenant_rls("session_families")
    enable_owner_purge("session_families")
    grant_to_runtime("session_families", "SELECT, INSERT, UPDATE")


def _create_refresh_tokens() -> None:
    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.LargeBinary(), primary_key=True),
        sa.Column("tenant_id", UUID, nullable=False),
        sa.Column("family_id", UUID, nullable=False),
        _timestamp("issued_at"),
        _timestamp("used_at", nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "family_id"],
            ["session_families.tenant_id", "session_families.id"],
            name="fk_refresh_tokens_family",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_refresh_tokens_tenant_id_family_id", "refresh_tokens", ["tenant_id", "family_id"]
    )
    enable_tenant_rls("refresh_tokens")
    enable_owner_purge("refresh_tokens")
    grant_to_runtime("refresh_tokens", "SELECT, INSERT, UPDATE")


def _create_revoke_function() -> None:
    op.execute(
        """
        CREATE FUNCTION revoke_user_sessions(p_user_id uuid, p_reason text)
        RETURNS integer LANGUAGE sql SECURITY DEFINER
        SET search_path = pg_catalog, public
        AS $$
            WITH revoked AS (
                UPDATE public.session_families SET revoked_at = now(), revoked_reason = p_reason
                WHERE user_id = p_user_id AND revoked_at IS NULL RETURNING 1
            )
            SELECT count(*)::integer FROM revoked
        $$
        """
    )
    # The function runs as the owner, whom FORCE RLS binds too: let exactly this update through
    # (it reads through `owner_purge_read`).
    op.execute(
        "CREATE POLICY owner_revoke ON session_families FOR UPDATE TO CURRENT_USER USING (true)"
    )
    op.execute(f"REVOKE ALL ON FUNCTION {REVOKE_USER_SESSIONS} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {REVOKE_USER_SESSIONS} TO {runtime_role()}")


def upgrade() -> None:
    _create_session_families()
    _create_refresh_tokens()
    _create_revoke_function()


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {REVOKE_USER_SESSIONS}")
    op.drop_table("refresh_tokens")
    op.drop_table("session_families")
