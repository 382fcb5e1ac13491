"""Notes gain a `format`: `text` (the default, every existing note) or sanitized `html`.

The default is a constant, so PostgreSQL 11+ records it in the catalog without rewriting the table;
the CHECK constraint is added NOT VALID and validated after that transaction commits, so no write
lock is held while existing rows are checked (docs/migrations.md).

Revision ID: 0008
Revises: 0007
Create Date: 2026-01-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.migration_ops import add_check_not_valid

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "notes",
        sa.Column("format", sa.String(), nullable=False, server_default=sa.text("'text'")),
    )
    add_check_not_valid("notes", "ck_notes_format", "format IN ('text', 'html')")
    # Commits the column and the constraint first: VALIDATE then scans without their lock. It
    # runs outside a transaction, which squawk flags; re-running a VALIDATE is harmless.
    with op.get_context().autocommit_block():
        op.execute(
            "-- squawk-ignore prefer-robust-stmts\n"
            "ALTER TABLE notes VALIDATE CONSTRAINT ck_notes_format"
        )


def downgrade() -> None:
    op.execute("ALTER TABLE notes DROP CONSTRAINT IF EXISTS ck_notes_format")
    op.drop_column("notes", "format")
