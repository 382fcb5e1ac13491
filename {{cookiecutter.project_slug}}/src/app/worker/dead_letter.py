"""The dead-letter store: final failures with their exception, and the `dlq` operations.

Written by workers through `record_dead_letter` (the runtime role cannot read the table); listed,
replayed and purged by operators as the owner role.
"""

from __future__ import annotations

import json
import traceback
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.observability.logging import redact
from app.worker.models import DeadLetter

MAX_TEXT = 10_000


@dataclass(frozen=True)
class FailedTask:
    task_id: str
    task_name: str
    args: list[Any]
    kwargs: dict[str, Any]
    error: BaseException
    attempts: int
    correlation_id: str | None
    tenant_id: uuid.UUID | None


async def record(session: AsyncSession, failed: FailedTask) -> None:
    """Store (or refresh) the dead letter for `failed`, with arguments redacted."""
    trace = "".join(traceback.format_exception(failed.error))
    await session.execute(
        text(
            "SELECT record_dead_letter(:id, :name, CAST(:args AS jsonb), CAST(:kwargs AS jsonb), "
            ":type, :message, :trace, :attempts, :correlation, :tenant)"
        ),
        {
            "id": failed.task_id,
            "name": failed.task_name,
            "args": json.dumps(redact(list(failed.args)), default=str),
            "kwargs": json.dumps(redact(dict(failed.kwargs)), default=str),
            "type": type(failed.error).__name__,
            "message": redact(str(failed.error))[:MAX_TEXT],
            "trace": redact(trace)[-MAX_TEXT:],
            "attempts": failed.attempts,
            "correlation": failed.correlation_id,
            "tenant": failed.tenant_id,
        },
    )


async def list_all(session: AsyncSession, limit: int = 100) -> list[DeadLetter]:
    rows = await session.scalars(
        select(DeadLetter).order_by(DeadLetter.last_failed_at.desc()).limit(limit)
    )
    return list(rows)


async def get(session: AsyncSession, dead_letter_id: str) -> DeadLetter | None:
    letter: DeadLetter | None = await session.get(DeadLetter, dead_letter_id)
    return letter


async def mark_replayed(session: AsyncSession, dead_letter_id: str) -> None:
    """Keep the record, note that (and when) it was replayed."""
    await session.execute(
        update(DeadLetter)
        .where(DeadLetter.id == dead_letter_id)
        .values(replayed_at=func.now(), replay_count=DeadLetter.replay_count + 1)
    )


async def purge(session: AsyncSession, older_than: timedelta | None = None) -> int:
    """Delete dead letters (all, or those last failed before `older_than` ago)."""
    statement = delete(DeadLetter)
    if older_than is not None:
        statement = statement.where(DeadLetter.last_failed_at < func.now() - older_than)
    result = await session.execute(statement.returning(DeadLetter.id))
    return len(result.all())


def as_dict(letter: DeadLetter) -> dict[str, Any]:
    """A JSON-ready view of a dead letter for `dlq list --json`."""
    return {name: _jsonable(getattr(letter, name)) for name in LISTED_FIELDS}


LISTED_FIELDS = (
    "id",
    "task_name",
    "args",
    "kwargs",
    "exception_type",
    "message",
    "attempts",
    "correlation_id",
    "tenant_id",
    "first_failed_at",
    "last_failed_at",
    "replayed_at",
    "replay_count",
)


def _jsonable(value: object) -> object:
    return str(value) if isinstance(value, datetime | uuid.UUID) else value
