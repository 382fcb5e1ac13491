"""Alembic environment: runs as the owner role, with short lock and statement timeouts.

`lock_timeout` matters most: an ALTER TABLE waiting for its lock blocks every query queued behind
it, so a migration that cannot get its lock quickly fails (retry it) instead of stalling traffic.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.db.migrate import DEFAULT_RUNTIME_ROLE, migration_owner_url
from app.db.models import metadata
from app.settings import load_settings

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


def _plain_alembic_runtime_role() -> str | None:
    """Run as plain `alembic upgrade head` (not through app.db.migrate): grant to the role named
    in DATABASE_URL, as `migrate` does, so the two ways to migrate agree."""
    if "runtime_role" in config.attributes:
        return None
    runtime_url = load_settings().database_url
    role = make_url(runtime_url.get_secret_value()).username if runtime_url else None
    config.attributes["runtime_role"] = role or DEFAULT_RUNTIME_ROLE
    return str(config.attributes["runtime_role"])


def _let_runtime_read_revision(connection: Connection, role: str) -> None:
    # Readiness reads alembic_version as the runtime role (app.db.migrate does the same grant).
    if connection.scalar(text("SELECT to_regclass('alembic_version')")) is not None:
        quoted = connection.dialect.identifier_preparer.quote(role)
        connection.execute(text(f"GRANT SELECT ON alembic_version TO {quoted}"))
        connection.commit()


async def run_migrations_online() -> None:
    plain_role = _plain_alembic_runtime_role()
    engine = create_async_engine(
        migration_owner_url(config), poolclass=pool.NullPool, hide_parameters=True
    )
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_with)
            if plain_role is not None:
                await connection.run_sync(_let_runtime_read_revision, plain_role)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
