"""SQL for webhook endpoints. Every query names the tenant explicitly, on top of RLS."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, delete, func, select, update
from sqlalchemy import insert as insert_statement
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Executor
from app.webhooks.models import WebhookEndpoint

MAX_ENDPOINTS = 100


# Core statements on the table: they run on the bare connection of an idempotent create
# (`Database.run_core`) as well as in an ORM session.
_TABLE = cast("Table", WebhookEndpoint.__table__)
_INSERT = insert_statement(_TABLE).returning(*_TABLE.c)
_SEALED_SECRET = select(_TABLE.c.secret).where(
    _TABLE.c.tenant_id == bindparam("tenant_id"), _TABLE.c.id == bindparam("endpoint_id")
)


async def insert(session: Executor, tenant_id: uuid.UUID, url: str, secret: str) -> Row[Any]:
    """The new endpoint's row (its columns by name); `secret` as stored, sealed."""
    values = {"tenant_id": tenant_id, "url": url, "secret": secret}
    return (await session.execute(_INSERT, values)).one()


async def sealed_secret(
    session: Executor, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> str | None:
    values = {"tenant_id": tenant_id, "endpoint_id": endpoint_id}
    secret: str | None = await session.scalar(_SEALED_SECRET, values)
    return secret


async def count(session: Executor, tenant_id: uuid.UUID) -> int:
    statement = select(func.count()).where(WebhookEndpoint.tenant_id == tenant_id)
    return int(await session.scalar(statement) or 0)


async def list_all(session: AsyncSession, tenant_id: uuid.UUID) -> Sequence[WebhookEndpoint]:
    statement = (
        select(WebhookEndpoint)
        .where(WebhookEndpoint.tenant_id == tenant_id)
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        .limit(MAX_ENDPOINTS)
    )
    return (await session.scalars(statement)).all()


# Asked on every note created: built once, with a bind parameter (docs/performance.md).
_ACTIVE_IDS = select(_TABLE.c.id).where(
    _TABLE.c.tenant_id == bindparam("tenant_id"), _TABLE.c.disabled_at.is_(None)
)


async def active_ids(session: Executor, tenant_id: uuid.UUID) -> Sequence[uuid.UUID]:
    return (await session.scalars(_ACTIVE_IDS, {"tenant_id": tenant_id})).all()


async def get(
    session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> WebhookEndpoint | None:
    statement = select(WebhookEndpoint).where(
        WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.id == endpoint_id
    )
    return (await session.scalars(statement)).one_or_none()


async def remove(session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID) -> bool:
    """Delete the endpoint and its secret for good; queued deliveries to it are then skipped."""
    statement = delete(WebhookEndpoint).where(
        WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.id == endpoint_id
    )
    return bool((await session.execute(statement)).rowcount)  # type: ignore[attr-defined]


async def disable(session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID) -> None:
    statement = (
        update(WebhookEndpoint)
        .where(
            WebhookEndpoint.tenant_id == tenant_id,
            WebhookEndpoint.id == endpoint_id,
            WebhookEndpoint.disabled_at.is_(None),
        )
        .values(disabled_at=func.now())
    )
    await session.execute(statement)
