"""People who log in from a browser: `users` and their `memberships` of tenants, under forced RLS.

A user belongs to no tenant by itself, so `users` has no tenant_id: its policy shows a user to a
tenant-scoped transaction only while a membership of that tenant exists. `memberships` is an
ordinary tenant table. Login happens before the tenant is known, so the runtime role reads
credentials by email only through SECURITY DEFINER functions (docs/tenancy.md):

- `user_login_memberships(p_email text)`: one row per membership of the user with that email
  (case-insensitive), or one row with a NULL tenant when the user has none; no row when unknown.
- `set_user_password(p_user_id uuid, p_password_hash text)`: a password change; stamps
  `password_changed_at`; returns whether the user exists.
- `rehash_user_password(p_user_id uuid, p_old_hash text, p_new_hash text)`: an upgrade of the
  hash's parameters at login; applies only while the hash is still `p_old_hash`, so it never
  overwrites a password changed meanwhile, and leaves `password_changed_at` alone.

Revision ID: 0009
Revises: 0008
Create Date: 2026-01-09
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

from app.db.migration_ops import enable_tenant_rls, grant_to_runtime, runtime_role
from app.db.tenancy import CURRENT_TENANT_SQL

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UUID = sa.Uuid()
NOW = sa.text("now()")
LOGIN_MEMBERSHIPS = "user_login_memberships(text)"
SET_PASSWORD = "set_user_password(uuid, text)"  # noqa: S105 - a signature, no secret
REHASH_PASSWORD = "rehash_user_password(uuid, text, text)"  # noqa: S105 - a signature
FUNCTIONS = (LOGIN_MEMBERSHIPS, SET_PASSWORD, REHASH_PASSWORD)


def _timestamp(name: str) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=NOW)


def _create_users() -> None:
    op.create_table(
        "users",
        sa.Column("id", UUID, primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("email", sa.String(), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        _timestamp("created_at"),
        _timestamp("password_changed_at"),
        sa.CheckConstraint("char_length(email) BETWEEN 3 AND 320", name="email_length"),
    )
    # A new, empty table: a plain CREATE INDEX locks nothing anyone waits for.
    op.execute("CREATE UNIQUE INDEX uq_users_lower_email ON users (lower(email))")


def _protect_users() -> None:
    """Its policy reads `memberships`, so it comes after that table."""
    op.execute("ALTER TABLE users ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE users FORCE ROW LEVEL SECURITY")
    member_of_current_tenant = (
        "EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = users.id "
        f"AND m.tenant_id = {CURRENT_TENANT_SQL})"
    )
    op.execute(
        f"CREATE POLICY tenant_isolation ON users USING ({member_of_current_tenant}) "
        f"WITH CHECK ({member_of_current_tenant})"
    )
    # The owner (create-user) finds and inserts users before any membership exists.
    op.execute("CREATE POLICY owner_admin_read ON users FOR SELECT TO CURRENT_USER USING (true)")
    op.execute(
        "CREATE POLICY owner_admin_insert ON users FOR INSERT TO CURRENT_USER WITH CHECK (true)"
    )
    # Writes go through the functions below; the runtime role only reads its tenant's members.
    grant_to_runtime("users", "SELECT")


def _create_memberships() -> None:
    op.create_table(
        "memberships",
        sa.Column("user_id", UUID, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column(
            "tenant_id", UUID, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("role", sa.String(), nullable=False),
        _timestamp("created_at"),
        # The primary key leads with user_id (it serves login's "memberships of this user" and
        # the users FK); the only other index leads with tenant_id, as on every tenant table.
        sa.PrimaryKeyConstraint("user_id", "tenant_id", name="pk_memberships"),
        sa.CheckConstraint("role IN ('owner', 'member')", name="role"),
    )
    op.create_index("ix_memberships_tenant_id_user_id", "memberships", ["tenant_id", "user_id"])
    enable_tenant_rls("memberships")
    grant_to_runtime("memberships")


def _create_functions() -> None:
    op.execute(
        """
        CREATE FUNCTION user_login_memberships(p_email text)
        RETURNS TABLE (user_id uuid, email text, password_hash text, tenant_id uuid, role text)
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, public
        AS $$
            SELECT u.id, u.email, u.password_hash, m.tenant_id, m.role
            FROM public.users AS u LEFT JOIN public.memberships AS m ON m.user_id = u.id
            WHERE lower(u.email) = lower(p_email)
            ORDER BY m.created_at, m.tenant_id
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION set_user_password(p_user_id uuid, p_password_hash text)
        RETURNS boolean LANGUAGE sql SECURITY DEFINER
        SET search_path = pg_catalog, public
        AS $$
            WITH changed AS (
                UPDATE public.users SET password_hash = p_password_hash, password_changed_at = now()
                WHERE id = p_user_id RETURNING 1
            )
            SELECT EXISTS (SELECT 1 FROM changed)
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION rehash_user_password(p_user_id uuid, p_old_hash text, p_new_hash text)
        RETURNS boolean LANGUAGE sql SECURITY DEFINER
        SET search_path = pg_catalog, public
        AS $$
            WITH changed AS (
                UPDATE public.users SET password_hash = p_new_hash
                WHERE id = p_user_id AND password_hash = p_old_hash RETURNING 1
            )
            SELECT EXISTS (SELECT 1 FROM changed)
        $$
        """
    )
    # The functions run as the owner, whom FORCE RLS also binds: these policies let exactly the
    # function bodies above (and create-user) through.
    op.execute("CREATE POLICY owner_admin_update ON users FOR UPDATE TO CURRENT_USER USING (true)")
    op.execute(
        "CREATE POLICY owner_login_read ON memberships FOR SELECT TO CURRENT_USER USING (true)"
    )
    for function in FUNCTIONS:
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {runtime_role()}")


def upgrade() -> None:
    _create_users()
    _create_memberships()
    _protect_users()
    _create_functions()


def downgrade() -> None:
    for function in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
    # The users policy reads memberships: it goes first.
    op.execute("DROP POLICY IF EXISTS tenant_isolation ON users")
    op.drop_table("memberships")
    op.drop_table("users")
