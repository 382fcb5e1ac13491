"""The async SQLAlchemy engine for the runtime role: server-side timeouts per connection, and a
client-side deadline for when the server itself cannot answer."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext import asyncio as sqlalchemy_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

CLIENT_DEADLINE_MARGIN_MS = 1_000


@dataclass(frozen=True)
class DatabaseTimeouts:
    """PostgreSQL-side limits, in milliseconds, applied to every runtime connection."""

    statement_ms: int = 5_000
    lock_ms: int = 2_000
    idle_in_transaction_ms: int = 10_000

    @property
    def client_s(self) -> float:
        """How long the driver waits for any answer (connect, or one command), in seconds.

        `statement_timeout` is enforced by the server, so it cannot fire when the server is
        stalled (frozen, swapping, a network partition): the driver's own deadline must. It is
        the statement timeout plus a margin, so a statement the server cancels in time still
        ends as the server's own error (57014), not as a client timeout.
        """
        return (self.statement_ms + CLIENT_DEADLINE_MARGIN_MS) / 1000


def create_engine(
    database_url: str,
    timeouts: DatabaseTimeouts | None = None,
    pool_size: int = 10,
    max_overflow: int = 5,
    pool_timeout: float = 5.0,
) -> AsyncEngine:
    """An engine with a bounded pool; waiting for a connection fails after `pool_timeout`
    seconds (5 by default), and connecting or any one command after `timeouts.client_s`:
    nothing waits forever. Statement parameters never appear in errors or logs."""
    timeouts = timeouts or DatabaseTimeouts()
    # Looked up at call time, so OpenTelemetry's wrapper (installed later) traces this engine.
    return sqlalchemy_asyncio.create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_pre_ping=True,
        pool_recycle=1800,
        # A failed statement's message would otherwise carry its parameters: user content.
        hide_parameters=True,
        connect_args={
            "timeout": timeouts.client_s,
            "command_timeout": timeouts.client_s,
            "server_settings": {
                "statement_timeout": str(timeouts.statement_ms),
                "lock_timeout": str(timeouts.lock_ms),
                "idle_in_transaction_session_timeout": str(timeouts.idle_in_transaction_ms),
                "application_name": "app",
            },
        },
    )
