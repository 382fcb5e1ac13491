"""Retention declared in code, and an idempotent purge that enforces it.

Each table holding expiring or personal data states how long its rows live after a timestamp.
The purge deletes in bounded batches (short transactions, no long locks), takes a session-level
advisory lock so two purges never run at once (the second one skips), and deletes by predicate:
running it twice deletes nothing the second time. It runs as the owner role, whose purge
policies see every tenant's rows (migration_ops.enable_owner_purge).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db.session import Database
from app.settings import Settings
from app.uploads.retention import stored_bytes_remover

PURGE_LOCK = 7216541
BATCH_SIZE = 1000
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Retention:
    table: str
    timestamp_column: str
    keep_for: timedelta
    reason: str
    # Data kept outside the table (stored files): `purged` gets each batch's deleted rows as
    # `returning` names them, after the batch committed (a crash in between leaves bytes no row
    # points to, never a row pointing at nothing).
    returning: str | None = None
    purged: Callable[[Sequence[Any]], Awaitable[None]] | None = None
    # When a row's end is not one column: an SQL expression over the row (a constant of this
    # file, never input) used instead of `timestamp_column`.
    ended_at_sql: str | None = None


# Ended browser sessions are kept this long (docs/authentication.md, "Retention"): a revoked
# family names why it ended (`refresh_reuse` for a detected theft), and a rotated refresh token
# presented again within this time still revokes its family, even after it expired.
SESSION_AUDIT_KEEP = timedelta(days=30)
# A family ends when it is revoked, else when its newest refresh token expires. Tokens go on
# their own rule, at the same keep, so a family the token rule emptied is already past its end:
# `created_at` then stands in for the end it no longer shows.
_FAMILY_ENDED_AT = (
    "COALESCE(revoked_at, (SELECT max(t.expires_at) FROM refresh_tokens t "
    "WHERE t.tenant_id = session_families.tenant_id AND t.family_id = session_families.id), "
    "created_at)"
)


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
        # Families before tokens: deleting a family takes its tokens (ON DELETE CASCADE).
        Retention(
            "session_families",
            "revoked_at",
            SESSION_AUDIT_KEEP,
            "browser sessions revoked, or with every refresh token expired",
            ended_at_sql=_FAMILY_ENDED_AT,
        ),
        Retention("refresh_tokens", "expires_at", SESSION_AUDIT_KEEP, "expired refresh tokens"),
        # `expires_at` is set only while an upload is incomplete: complete ones never expire.
        Retention(
            "uploads",
            "expires_at",
            timedelta(0),
            "incomplete uploads past their expiry, with their stored bytes",
            returning="tenant_id, id",
            purged=stored_bytes_remover(settings),
        ),
    ]


async def _purge_table(database: Database, rule: Retention, batch_size: int) -> int:
    table, column = rule.table, rule.timestamp_column
    if not (_IDENTIFIER.match(table) and _IDENTIFIER.match(column)):
        raise ValueError(f"bad retention rule: {rule}")
    returning = f" RETURNING {rule.returning}" if rule.returning else ""
    ended_at = rule.ended_at_sql or column  # a constant of the rule's declaration, not input
    statement = text(
        f"DELETE FROM {table} WHERE ctid = ANY(ARRAY("  # noqa: S608 - identifiers checked above
        f"SELECT ctid FROM {table} WHERE {ended_at} < now() - CAST(:keep AS interval) "
        "LIMIT :batch))" + returning
    )
    params = {"keep": rule.keep_for, "batch": batch_size}

    async def one_batch(session: AsyncSession) -> Sequence[Any]:
        result = await session.execute(statement, params)
        if rule.returning:
            return result.all()
        return [None] * int(getattr(result, "rowcount", 0))

    deleted = 0
    while True:
        # One short transaction per batch: no lock is held across the whole purge.
        rows = await database.run(one_batch, tenant_id=None)
        if rule.purged is not None and rows:
            await rule.purged(rows)
        deleted += len(rows)
        if len(rows) < batch_size:
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
