"""DATA-MIGRATIONS: the online-change helpers do what they promise on real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine

from app.db.migration_ops import (
    add_check_not_valid,
    create_index_concurrently,
    drop_index_concurrently,
    validate_constraint,
)
from app.dev.services import drop_database, prepare_database


def _apply_helpers(connection: Connection) -> dict[str, object]:
    connection.execute(text("CREATE TABLE items (tenant_id uuid NOT NULL, qty integer)"))
    connection.execute(text("INSERT INTO items VALUES (gen_random_uuid(), 1)"))
    connection.commit()
    context = MigrationContext.configure(connection, opts={"transaction_per_migration": True})
    with Operations.context(context), context.begin_transaction(_per_migration=True):
        add_check_not_valid("items", "qty_positive", "qty > 0")
        validate_constraint("items", "qty_positive")
        create_index_concurrently("ix_items_tenant_id_qty", "items", ["tenant_id", "qty"])
    row = connection.execute(
        text(
            "SELECT (SELECT convalidated FROM pg_constraint WHERE conname = 'qty_positive'), "
            "(SELECT indisvalid FROM pg_index WHERE indexrelid = "
            "'ix_items_tenant_id_qty'::regclass)"
        )
    ).one()
    with Operations.context(context), context.begin_transaction(_per_migration=True):
        drop_index_concurrently("ix_items_tenant_id_qty")
    gone = connection.execute(text("SELECT to_regclass('ix_items_tenant_id_qty')")).scalar()
    return {"validated": row[0], "index_valid": row[1], "dropped": gone is None}


def test_constraints_validate_and_indexes_build_concurrently(admin_database_url: str) -> None:
    """NOT VALID then VALIDATE ends validated; the concurrent index is valid, then dropped."""
    name = f"ops_{uuid.uuid4().hex[:12]}"
    owner, _ = prepare_database(admin_database_url, name, recreate=True)

    async def run() -> dict[str, object]:
        engine = create_async_engine(owner)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(_apply_helpers)
        finally:
            await engine.dispose()

    try:
        assert asyncio.run(run()) == {"validated": True, "index_valid": True, "dropped": True}
    finally:
        drop_database(admin_database_url, name)
