"""SQL for webhook endpoints. Every query names the tenant explicitly, on top of RLS."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy import insert as insert_statement
from sqlalchemy.ext.asyncio import AsyncSession

from app.webhooks.models import WebhookEndpoint

MAX_ENDPOINTS = 100


async def insert(
    session: AsyncSession, tenant_id: uuid.UUID, url: str, secret: str
) -> WebhookEndpoint:
    statement = insert_statement(WebhookEndpoint).returning(WebhookEndpoint)
    row = {"tenant_id": tenant_id, "url": url, "secret": secret}
    endpoint: WebhookEndpoint = (await session.scalars(statement, [row])).one()
    return endpoint


async def count(session: AsyncSession, tenant_id: uuid.UUID) -> int:
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
_ACTIVE = select(WebhookEndpoint).where(
    WebhookEndpoint.tenant_id == bindparam("tenant_id"), WebhookEndpoint.disabled_at.is_(None)
)


async def active(session: AsyncSession, tenant_id: uuid.UUID) -> Sequence[WebhookEndpoint]:
    return (await session.scalars(_ACTIVE, {"tenant_id": tenant_id})).all()


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
