"""Issuing, listing, revoking and rotating API keys: operator actions, run as the owner role.

Row-level security is forced on `api_keys` even for the owner. The owner may read every tenant's
keys (the `api_key_lookup` policy) but may write a key only in a transaction scoped to the key's
tenant, so each change reads the key's tenant first, then scopes the transaction to it. Times
come from the database clock (`now()`), the same clock `verify_api_key` compares them with.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.api_keys import issue_key
from app.db.tenancy import set_tenant
from app.tenants.models import ApiKey, Tenant


class KeyLifecycleError(Exception):
    """The operator asked for something the keys do not allow; the message says what."""


@dataclass(frozen=True)
class IssuedApiKey:
    """A new key. `api_key` is the plaintext, shown once and never stored."""

    key_id: uuid.UUID
    tenant_id: uuid.UUID
    api_key: str
    expires_at: datetime | None


@dataclass(frozen=True)
class KeySummary:
    """What `list` shows of a key: never its secret or its hash."""

    key_id: uuid.UUID
    name: str
    status: str  # active | expired | revoked
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class Rotation:
    new_key: IssuedApiKey
    replaced_key_id: uuid.UUID
    replaced_key_expires_at: datetime


async def insert_api_key(
    session: AsyncSession, tenant_id: uuid.UUID, name: str, lifetime: timedelta | None
) -> IssuedApiKey:
    """Add a key to the tenant the session is scoped to; it expires `lifetime` from now."""
    key = issue_key()
    expires_at = await session.scalar(
        insert(ApiKey)
        .values(
            id=key.key_id,
            tenant_id=tenant_id,
            name=name,
            secret_hash=key.secret_hash,
            expires_at=func.now() + lifetime if lifetime is not None else None,
        )
        .returning(ApiKey.expires_at)
    )
    return IssuedApiKey(key.key_id, tenant_id, key.plaintext, expires_at)


async def create_api_key(
    session: AsyncSession, tenant_id: uuid.UUID, name: str, lifetime: timedelta | None
) -> IssuedApiKey:
    """A new key for an existing tenant."""
    await set_tenant(session, tenant_id)
    if await session.scalar(select(Tenant.id).where(Tenant.id == tenant_id)) is None:
        raise KeyLifecycleError(f"no tenant with id {tenant_id}")
    return await insert_api_key(session, tenant_id, name, lifetime)


async def list_api_keys(session: AsyncSession, tenant_id: uuid.UUID) -> list[KeySummary]:
    """Every key of the tenant, oldest first, with its state now."""
    await set_tenant(session, tenant_id)
    now: datetime = (await session.execute(select(func.now()))).scalar_one()
    rows = await session.execute(
        select(ApiKey.id, ApiKey.name, ApiKey.created_at, ApiKey.expires_at, ApiKey.revoked_at)
        .where(ApiKey.tenant_id == tenant_id)
        .order_by(ApiKey.created_at, ApiKey.id)
    )
    return [
        KeySummary(
            key_id=row.id,
            name=row.name,
            status=_status(row.revoked_at, row.expires_at, now),
            created_at=row.created_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
        )
        for row in rows
    ]


def _status(revoked_at: datetime | None, expires_at: datetime | None, now: datetime) -> str:
    if revoked_at is not None:
        return "revoked"
    if expires_at is not None and expires_at <= now:
        return "expired"
    return "active"


async def _scope_to_key(session: AsyncSession, key_id: uuid.UUID) -> uuid.UUID:
    """Scope the transaction to the tenant of `key_id` and return that tenant."""
    tenant_id = await session.scalar(select(ApiKey.tenant_id).where(ApiKey.id == key_id))
    if tenant_id is None:
        raise KeyLifecycleError(f"no API key with id {key_id}")
    await set_tenant(session, tenant_id)
    return tenant_id


async def revoke_api_key(session: AsyncSession, key_id: uuid.UUID) -> None:
    """Stamp `revoked_at` (once: revoking a revoked key changes nothing)."""
    await _scope_to_key(session, key_id)
    await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )


async def rotate_api_key(
    session: AsyncSession, key_id: uuid.UUID, overlap: timedelta, lifetime: timedelta | None
) -> Rotation:
    """A new key with the old one's tenant and name; the old one expires after `overlap`
    (sooner if it already expired sooner). The row lock makes concurrent rotations queue."""
    tenant_id = await _scope_to_key(session, key_id)
    old = (
        await session.execute(
            select(ApiKey.name, ApiKey.revoked_at, ApiKey.expires_at, func.now().label("now"))
            .where(ApiKey.id == key_id)
            .with_for_update()
        )
    ).one()
    state = _status(old.revoked_at, old.expires_at, old.now)
    if state != "active":
        raise KeyLifecycleError(f"API key {key_id} is {state}; create a new key instead")
    new_key = await insert_api_key(session, tenant_id, old.name, lifetime)
    ends = old.now + overlap
    if old.expires_at is not None:
        ends = min(ends, old.expires_at)
    await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(expires_at=ends))
    return Rotation(new_key, key_id, ends)
