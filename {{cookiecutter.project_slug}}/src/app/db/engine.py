"""The async SQLAlchemy engine for the runtime role, with server-side timeouts per connection."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext import asyncio as sqlalchemy_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass(frozen=True)
class DatabaseTimeouts:
    """PostgreSQL-side limits, in milliseconds, applied to every runtime connection."""

    statement_ms: int = 5_000
    lock_ms: int = 2_000
    idle_in_transaction_ms: int = 10_000


def create_engine(
    database_url: str,
    timeouts: DatabaseTimeouts | None = None,
    pool_size: int = 10,
    max_overflow: int = 5,
    pool_timeout: float = 5.0,
) -> AsyncEngine:
    """An engine with a bounded pool; waiting for a connection fails after `pool_timeout`
    seconds (5 by default), never hangs."""
    timeouts = timeouts or DatabaseTimeouts()
    # Looked up at call time, so OpenTelemetry's wrapper (installed later) traces this engine.
    return sqlalchemy_asyncio.create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={
            "server_settings": {
                "statement_timeout": str(timeouts.statement_ms),
                "lock_timeout": str(timeouts.lock_ms),
                "idle_in_transaction_session_timeout": str(timeouts.idle_in_transaction_ms),
                "application_name": "app",
            }
        },
    )


async def ping_database(engine: AsyncEngine) -> None:
    """Round-trip one trivial query; raises when the database cannot answer."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
