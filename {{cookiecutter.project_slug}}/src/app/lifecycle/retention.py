"""Retention declared in code, and an idempotent purge that enforces it.

Each table holding expiring or personal data states how long its rows live after a timestamp.
The purge deletes in bounded batches (short transactions, no long locks), takes a session-level
advisory lock so two purges never run at once (the second one skips), and deletes by predicate:
running it twice deletes nothing the second time. It runs as the owner role, whose purge
policies see every tenant's rows (migration_ops.enable_owner_purge).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db.session import Database
from app.settings import Settings

PURGE_LOCK = 7216541
BATCH_SIZE = 1000
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Retention:
    table: str
    timestamp_column: str
    keep_for: timedelta
    reason: str


def retention_policies(settings: Settings) -> list[Retention]:
    """Every expiring table. Add yours here when you add one."""
    return [
        Retention("notes", "deleted_at", timedelta(days=30), "soft-deleted notes"),
        Retention(
            "idempotency_keys",
            "created_at",
            timedelta(hours=settings.idempotency_retention_hours),
            "idempotency records past their replay window",
        ),
        Retention(
            "dead_letters",
            "last_failed_at",
            timedelta(days=settings.dead_letter_retention_days),
            "dead letters nobody replayed",
        ),
        Retention("outbox", "relayed_at", timedelta(days=7), "relayed outbox rows"),
    ]


async def _purge_table(database: Database, rule: Retention, batch_size: int) -> int:
    table, column = rule.table, rule.timestamp_column
    if not (_IDENTIFIER.match(table) and _IDENTIFIER.match(column)):
        raise ValueError(f"bad retention rule: {rule}")
    statement = text(
        f"DELETE FROM {table} WHERE ctid = ANY(ARRAY("  # noqa: S608 - identifiers checked above
        f"SELECT ctid FROM {table} WHERE {column} < now() - CAST(:keep AS interval) LIMIT :batch))"
    )
    params = {"keep": rule.keep_for, "batch": batch_size}

    async def one_batch(session: AsyncSession) -> int:
        result = await session.execute(statement, params)
        return int(getattr(result, "rowcount", 0))

    deleted = 0
    while True:
        # One short transaction per batch: no lock is held across the whole purge.
        batch = await database.run(one_batch, tenant_id=None)
        deleted += batch
        if batch < batch_size:
            return deleted


async def purge_expired(
    engine: AsyncEngine, rules: list[Retention], batch_size: int = BATCH_SIZE
) -> dict[str, int] | None:
    """Delete expired rows of every table; None when another purge holds the lock."""
    database = Database(engine)
    # A session-level lock on its own autocommit connection, held for the whole purge.
    async with engine.connect() as connection:
        lock_conn = await connection.execution_options(isolation_level="AUTOCOMMIT")
        locked = await lock_conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": PURGE_LOCK})
        if not locked:
            return None
        try:
            return {rule.table: await _purge_table(database, rule, batch_size) for rule in rules}
        finally:
            await lock_conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PURGE_LOCK})
