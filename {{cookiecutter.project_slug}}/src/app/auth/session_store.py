"""Queries on session families and refresh tokens. Every one runs inside a transaction that
`Database.run` has scoped to the tenant (row-level security); none commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.session_models import RefreshToken, SessionFamily


@dataclass(frozen=True)
class PresentedRefresh:
    """A stored refresh token and its family, locked for this transaction."""

    family_id: uuid.UUID
    user_id: uuid.UUID
    device_hash: bytes
    family_revoked: bool
    used_at: datetime | None
    expires_at: datetime
    now: datetime


async def start_family(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID, device_hash: bytes
) -> uuid.UUID:
    """A new family (one login on one device); its id."""
    statement = (
        insert(SessionFamily)
        .values(tenant_id=tenant_id, user_id=user_id, device_hash=device_hash)
        .returning(SessionFamily.id)
    )
    family_id: uuid.UUID = (await session.execute(statement)).scalar_one()
    return family_id


async def add_refresh_token(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    family_id: uuid.UUID,
    token_hash: bytes,
    expires_at: datetime,
) -> None:
    await session.execute(
        insert(RefreshToken).values(
            token_hash=token_hash, tenant_id=tenant_id, family_id=family_id, expires_at=expires_at
        )
    )


async def load_refresh(
    session: AsyncSession, tenant_id: uuid.UUID, token_hash: bytes
) -> PresentedRefresh | None:
    """The token and its family, both locked: two refreshes of one token queue, never race."""
    statement = (
        select(
            SessionFamily.id,
            SessionFamily.user_id,
            SessionFamily.device_hash,
            SessionFamily.revoked_at,
            RefreshToken.used_at,
            RefreshToken.expires_at,
            func.now(),
        )
        .join(SessionFamily, SessionFamily.id == RefreshToken.family_id)
        .where(RefreshToken.tenant_id == tenant_id, RefreshToken.token_hash == token_hash)
        .with_for_update()
    )
    row = (await session.execute(statement)).first()
    if row is None:
        return None
    family_id, user_id, device, revoked_at, used_at, expires_at, now = row
    return PresentedRefresh(
        family_id, user_id, device, revoked_at is not None, used_at, expires_at, now
    )


async def mark_used(session: AsyncSession, tenant_id: uuid.UUID, token_hash: bytes) -> None:
    """Rotated: the token stays, so a later reuse still finds (and revokes) its family."""
    await session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.tenant_id == tenant_id,
            RefreshToken.token_hash == token_hash,
            RefreshToken.used_at.is_(None),
        )
        .values(used_at=func.now())
    )


async def revoke_family(
    session: AsyncSession, tenant_id: uuid.UUID, family_id: uuid.UUID, reason: str
) -> None:
    await session.execute(
        update(SessionFamily)
        .where(
            SessionFamily.tenant_id == tenant_id,
            SessionFamily.id == family_id,
            SessionFamily.revoked_at.is_(None),
        )
        .values(revoked_at=func.now(), revoked_reason=reason)
    )


# Built once: constructing a `text()` parses its bind parameters on every call.
_LIVE_FAMILY = text(
    "SELECT EXISTS (SELECT 1 FROM session_families "
    "WHERE tenant_id = :tenant_id AND id = :family_id AND revoked_at IS NULL)"
)
_REVOKE_USER = text("SELECT revoke_user_sessions(:user_id, :reason)")


async def family_is_live(session: AsyncSession, tenant_id: uuid.UUID, family_id: uuid.UUID) -> bool:
    """Whether the family exists (its membership too: the foreign key cascades) and is live."""
    result = await session.execute(_LIVE_FAMILY, {"tenant_id": tenant_id, "family_id": family_id})
    return bool(result.scalar_one())


async def revoke_user_sessions(session: AsyncSession, user_id: uuid.UUID, reason: str) -> int:
    """Revoke every live family of the user in every tenant; how many."""
    result = await session.execute(_REVOKE_USER, {"user_id": user_id, "reason": reason})
    return int(result.scalar_one())
