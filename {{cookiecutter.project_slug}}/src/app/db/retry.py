"""Bounded transaction retries: which database errors are worth retrying, and how long to wait.

PostgreSQL never retries a failed transaction itself, because only the application can re-run the
logic that chose the SQL (PostgreSQL docs, "Serialization Failure Handling"). Pure functions, so the
policy is tested directly.
"""

from __future__ import annotations

import random

from sqlalchemy.exc import DBAPIError

SERIALIZATION_FAILURE = "40001"
DEADLOCK_DETECTED = "40P01"
RETRYABLE_SQLSTATES = frozenset({SERIALIZATION_FAILURE, DEADLOCK_DETECTED})


def sqlstate_of(error: BaseException) -> str | None:
    """The five-character SQLSTATE of a database error, if it carries one."""
    # asyncpg's own exceptions carry `sqlstate` too, when one escapes SQLAlchemy unwrapped.
    source = error.orig if isinstance(error, DBAPIError) else error
    code = getattr(source, "sqlstate", None) or getattr(source, "pgcode", None)
    return code if isinstance(code, str) and len(code) == 5 else None


def is_retryable(error: BaseException) -> bool:
    """Serialization failures and deadlocks: re-running the whole transaction can succeed."""
    return sqlstate_of(error) in RETRYABLE_SQLSTATES


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**attempt)].

    `attempt` counts from 0 for the first retry.
    """
    ceiling = min(cap, base * (2**attempt))
    return (rng or random).uniform(0, ceiling)
