"""Outbox delivery end to end: a row is done when its task has run, not when it was published.

`relayed_at` now means "last published"; `done_at` is set by the worker once the task has run (or
was dead-lettered); `publish_count` counts publishes. `outbox_claim_due` also returns rows
published but not done for longer than the redelivery deadline (doubling with each publish, up to
16 times), so a message the broker lost is published again. The 0004 functions stay: processes
still running the previous release keep relaying while this one rolls out (expand step).

Revision ID: 0007
Revises: 0006
Create Date: 2026-01-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.migration_ops import runtime_role

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLAIM_DUE = "outbox_claim_due(integer, interval)"
MARK_PUBLISHED = "outbox_mark_published(uuid[])"
MARK_DONE = "outbox_mark_done(uuid)"
FUNCTIONS = (CLAIM_DUE, MARK_PUBLISHED, MARK_DONE)


def upgrade() -> None:
    op.add_column("outbox", sa.Column("done_at", sa.DateTime(timezone=True), nullable=True))
    # A constant default: PostgreSQL 11+ stores it in the catalog, no table rewrite.
    op.add_column(
        "outbox",
        sa.Column("publish_count", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    )
    # Rows relayed before this release were "done" under the old meaning: do not re-publish them.
    op.execute(
        "UPDATE outbox SET done_at = relayed_at, publish_count = 1 WHERE relayed_at IS NOT NULL"
    )
    op.execute(
        """
        CREATE FUNCTION outbox_claim_due(p_limit integer, p_redeliver_after interval)
        RETURNS SETOF outbox LANGUAGE sql SECURITY DEFINER
        SET search_path = pg_catalog, public
        AS $$
            SELECT * FROM public.outbox
            WHERE done_at IS NULL AND (
                relayed_at IS NULL
                OR relayed_at < now() - p_redeliver_after * power(2, least(publish_count - 1, 4))
            )
            ORDER BY created_at LIMIT p_limit FOR UPDATE SKIP LOCKED
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION outbox_mark_published(p_ids uuid[])
        RETURNS void LANGUAGE sql SECURITY DEFINER
        SET search_path = pg_catalog, public
        AS $$
            UPDATE public.outbox SET relayed_at = now(), publish_count = publish_count + 1
            WHERE id = ANY(p_ids)
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION outbox_mark_done(p_id uuid)
        RETURNS void LANGUAGE sql SECURITY DEFINER
        SET search_path = pg_catalog, public
        AS $$ UPDATE public.outbox SET done_at = now() WHERE id = p_id AND done_at IS NULL $$
        """
    )
    for function in FUNCTIONS:
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {runtime_role()}")


def downgrade() -> None:
    for function in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
    op.drop_column("outbox", "publish_count")
    op.drop_column("outbox", "done_at")
