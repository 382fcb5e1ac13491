"""API key lifecycle: keys may expire, and an expired key authenticates no more.

`authenticate_api_key` keeps its signature (the previous release calls it during a rolling
deploy) and now also refuses expired keys. `verify_api_key` answers the same question with the
key's expiry too, so the service's key cache never serves a key past it (docs/tenancy.md).

Revision ID: 0006
Revises: 0005
Create Date: 2026-01-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.migration_ops import runtime_role

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUTHENTICATE = "authenticate_api_key(uuid, bytea)"
VERIFY = "verify_api_key(uuid, bytea)"
_USABLE = "revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"


def _authenticate(usable: str) -> str:
    return f"""
        CREATE OR REPLACE FUNCTION authenticate_api_key(p_key_id uuid, p_secret_hash bytea)
        RETURNS uuid
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, public
        AS $$
            SELECT tenant_id FROM public.api_keys
            WHERE id = p_key_id AND secret_hash = p_secret_hash AND {usable}
        $$
        """


def upgrade() -> None:
    # Nullable, no default: a catalog-only change, no table rewrite. NULL means "never expires".
    op.add_column("api_keys", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(_authenticate(_USABLE))
    op.execute(
        """
        CREATE FUNCTION verify_api_key(p_key_id uuid, p_secret_hash bytea)
        RETURNS TABLE (tenant_id uuid, expires_at timestamptz)
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, public
        AS $$
            SELECT k.tenant_id, k.expires_at FROM public.api_keys AS k
            WHERE k.id = p_key_id AND k.secret_hash = p_secret_hash
              AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
        $$
        """
    )
    op.execute(f"REVOKE ALL ON FUNCTION {VERIFY} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {VERIFY} TO {runtime_role()}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {VERIFY}")
    op.execute(_authenticate("revoked_at IS NULL"))
    op.drop_column("api_keys", "expires_at")
