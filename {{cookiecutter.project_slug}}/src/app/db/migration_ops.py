"""Helpers for migrations: tenant row-level security, runtime grants and online schema changes.

Online changes keep the service answering while the schema moves (see docs/migrations.md):
- indexes are built and dropped CONCURRENTLY, outside the migration's transaction;
- constraints are added NOT VALID (a brief lock) and validated later (no write lock);
- a column is replaced by expand (add the new), migrate (backfill in batches), contract (drop the
  old, in a later release).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from alembic import op

from app.db.tenancy import CURRENT_TENANT_SQL

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _ident(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return name


def runtime_role() -> str:
    """The role named in DATABASE_URL, which the migrations grant privileges to."""
    role = op.get_context().config.attributes.get("runtime_role", "app_runtime")  # type: ignore[union-attr]
    return _ident(str(role))


def enable_tenant_rls(table: str, tenant_column: str = "tenant_id") -> None:
    """Enable and force RLS on `table` with one policy that filters reads and checks writes."""
    table, column = _ident(table), _ident(tenant_column)
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    # FORCE: without it the table owner (the migration role) would bypass every policy.
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON {table} "
        f"USING ({column} = {CURRENT_TENANT_SQL}) "
        f"WITH CHECK ({column} = {CURRENT_TENANT_SQL})"
    )


def enable_owner_purge(table: str) -> None:
    """Let the owner role (migrations, operator commands, the purge job) read and delete every
    tenant's rows of `table`, for retention. The runtime role stays confined to one tenant."""
    table = _ident(table)
    op.execute(f"CREATE POLICY owner_purge_read ON {table} FOR SELECT TO CURRENT_USER USING (true)")
    op.execute(f"CREATE POLICY owner_purge ON {table} FOR DELETE TO CURRENT_USER USING (true)")


def disable_tenant_rls(table: str) -> None:
    """Undo `enable_tenant_rls` (for downgrades)."""
    table = _ident(table)
    op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
    op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")


def grant_to_runtime(table: str, privileges: str = "SELECT, INSERT, UPDATE, DELETE") -> None:
    """Give the runtime role exactly `privileges` on `table`, nothing else."""
    if not re.fullmatch(r"[A-Z, ]+", privileges):
        raise ValueError(f"not a privilege list: {privileges!r}")
    op.execute(f"GRANT {privileges} ON {_ident(table)} TO {runtime_role()}")


def create_index_concurrently(
    name: str, table: str, columns: Sequence[str], *, unique: bool = False
) -> None:
    """Build an index without blocking writes, outside the migration's transaction.

    A failed concurrent build leaves an INVALID index under the same name, so any leftover is
    dropped first (`IF NOT EXISTS` would report success over it).
    """
    name, table = _ident(name), _ident(table)
    cols = ", ".join(_ident(column) for column in columns)
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        # No IF NOT EXISTS on purpose (the leftover was just dropped), so tell squawk why.
        op.execute(
            "-- squawk-ignore prefer-robust-stmts\n"
            f"CREATE {'UNIQUE ' if unique else ''}INDEX CONCURRENTLY {name} ON {table} ({cols})"
        )


def drop_index_concurrently(name: str) -> None:
    """Drop an index without blocking writes."""
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_ident(name)}")


def add_check_not_valid(table: str, name: str, condition: str) -> None:
    """Add a CHECK constraint without scanning the table; call `validate_constraint` next."""
    op.execute(
        f"ALTER TABLE {_ident(table)} ADD CONSTRAINT {_ident(name)} CHECK ({condition}) NOT VALID"
    )


def add_foreign_key_not_valid(
    table: str, name: str, column: str, referred_table: str, referred_column: str = "id"
) -> None:
    """Add a foreign key without scanning the table; call `validate_constraint` next.

    Index `column` too (`create_index_concurrently`): the fitness tests require it.
    """
    op.execute(
        f"ALTER TABLE {_ident(table)} ADD CONSTRAINT {_ident(name)} FOREIGN KEY "
        f"({_ident(column)}) REFERENCES {_ident(referred_table)} ({_ident(referred_column)}) "
        "NOT VALID"
    )


def validate_constraint(table: str, name: str) -> None:
    """Check existing rows under SHARE UPDATE EXCLUSIVE: reads and writes continue meanwhile."""
    op.execute(f"ALTER TABLE {_ident(table)} VALIDATE CONSTRAINT {_ident(name)}")
