"""Alembic environment: runs as the owner role, with short lock and statement timeouts.

`lock_timeout` matters most: an ALTER TABLE waiting for its lock blocks every query queued behind
it, so a migration that cannot get its lock quickly fails (retry it) instead of stalling traffic.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.db.migrate import migration_owner_url
from app.db.models import metadata

LOCK_TIMEOUT = "2s"
STATEMENT_TIMEOUT = "5min"
TIMEOUTS = (
    f"SET lock_timeout = '{LOCK_TIMEOUT}'",
    f"SET statement_timeout = '{STATEMENT_TIMEOUT}'",
)

config = context.config


def run_migrations_offline() -> None:
    """Emit the SQL instead of running it (`alembic upgrade head --sql`), for review and squawk."""
    context.configure(
        url="postgresql://",
        target_metadata=metadata,
        literal_binds=True,
        transaction_per_migration=True,
        dialect_opts={"paramstyle": "named"},
    )
    for statement in TIMEOUTS:
        context.execute(statement)
    with context.begin_transaction():
        context.run_migrations()


def _run_with(connection: Connection) -> None:
    for statement in TIMEOUTS:
        connection.execute(text(statement))
    # Session-level settings survive this commit; Alembic must start from no open transaction,
    # or autocommit_block() (concurrent index builds) cannot work.
    connection.commit()
    context.configure(
        connection=connection,
        target_metadata=metadata,
        transaction_per_migration=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    engine = create_async_engine(
        migration_owner_url(config), poolclass=pool.NullPool, hide_parameters=True
    )
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_with)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
