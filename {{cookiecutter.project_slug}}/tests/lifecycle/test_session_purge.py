"""DATA-LIFECYCLE for browser sessions: ended families and expired refresh tokens are purged
after SESSION_AUDIT_KEEP (30 days), live ones and the recent audit trail are kept."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from app.db.tenancy import TENANT_SETTING
from app.dev.services import ServiceUrls
from app.lifecycle.retention import SESSION_AUDIT_KEEP, purge_expired, retention_policies
from app.settings import Settings
from app.tenants.service import NewTenant

# Family name → (created, revoked or None, token expiries), in days from now (negative: past).
FAMILIES: dict[str, tuple[int, int | None, list[int]]] = {
    "live": (-2, None, [12]),
    "revoked_29_days_ago": (-35, -29, [-15]),
    "revoked_31_days_ago": (-40, -31, [-17]),  # its unexpired token goes with it (cascade)
    "expired_29_days_ago": (-50, None, [-36, -29]),  # its older token goes
    "expired_31_days_ago": (-60, None, [-45, -31]),
    "rotated": (-50, None, [-40, 10]),  # the old token goes, the family and new token stay
    "no_token_left": (-31, None, []),  # its tokens went by their own rule: past its end
}
KEPT_FAMILIES = {"live", "revoked_29_days_ago", "expired_29_days_ago", "rotated"}
# (family, expiry) of each token that stays: never one expired more than 30 days ago.
KEPT_TOKENS = {("live", 12), ("revoked_29_days_ago", -15), ("expired_29_days_ago", -29)}
KEPT_TOKENS |= {("rotated", 10)}


@pytest.fixture
async def owner(service_urls: ServiceUrls) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(service_urls.owner_database_url)
    yield engine
    await engine.dispose()


def _days(days: int | None) -> timedelta | None:
    return None if days is None else timedelta(days=days)


async def _scoped(conn: AsyncConnection, tenant_id: uuid.UUID) -> None:
    await conn.execute(
        text("SELECT set_config(:n, :t, true)"), {"n": TENANT_SETTING, "t": str(tenant_id)}
    )


async def _member(conn: AsyncConnection, tenant_id: uuid.UUID) -> uuid.UUID:
    user_id = await conn.scalar(
        text("INSERT INTO users (email, password_hash) VALUES (:e, 'x') RETURNING id"),
        {"e": f"purge-{uuid.uuid4().hex[:10]}@example.com"},
    )
    await conn.execute(
        text("INSERT INTO memberships (user_id, tenant_id, role) VALUES (:u, :t, 'member')"),
        {"u": user_id, "t": tenant_id},
    )
    assert isinstance(user_id, uuid.UUID)
    return user_id


async def _family(
    conn: AsyncConnection, tenant_id: uuid.UUID, user_id: uuid.UUID, name: str
) -> uuid.UUID:
    created, revoked, expiries = FAMILIES[name]
    family_id = await conn.scalar(
        text(
            "INSERT INTO session_families (tenant_id, user_id, device_hash, created_at, "
            "revoked_at, revoked_reason) VALUES (:t, :u, :d, now() + CAST(:c AS interval), "
            "now() + CAST(:r AS interval), "
            "CASE WHEN CAST(:r AS interval) IS NULL THEN NULL ELSE 'logout' END) RETURNING id"
        ),
        {"t": tenant_id, "u": user_id, "d": b"d" * 32, "c": _days(created), "r": _days(revoked)},
    )
    for expiry in expiries:
        await conn.execute(
            text(
                "INSERT INTO refresh_tokens (token_hash, tenant_id, family_id, issued_at, "
                "expires_at) VALUES (:h, :t, :f, now() + CAST(:c AS interval), "
                "now() + CAST(:e AS interval))"
            ),
            {
                "h": hashlib.sha256(uuid.uuid4().bytes).digest(),
                "t": tenant_id,
                "f": family_id,
                "c": _days(created),
                "e": _days(expiry),
            },
        )
    assert isinstance(family_id, uuid.UUID)
    return family_id


async def _sessions(owner: AsyncEngine, tenant_id: uuid.UUID) -> dict[str, uuid.UUID]:
    async with owner.begin() as conn:
        await _scoped(conn, tenant_id)
        user_id = await _member(conn, tenant_id)
        return {name: await _family(conn, tenant_id, user_id, name) for name in FAMILIES}


async def _remaining(
    owner: AsyncEngine, tenant_id: uuid.UUID, families: dict[str, uuid.UUID]
) -> tuple[set[str], set[tuple[str, int]]]:
    names = {family_id: name for name, family_id in families.items()}
    async with owner.begin() as conn:
        await _scoped(conn, tenant_id)
        kept = await conn.scalars(
            text("SELECT id FROM session_families WHERE tenant_id = :t"), {"t": tenant_id}
        )
        tokens = await conn.execute(
            text(
                "SELECT family_id, round(extract(epoch FROM expires_at - now()) / 86400) "
                "FROM refresh_tokens WHERE tenant_id = :t"
            ),
            {"t": tenant_id},
        )
        return {names[i] for i in kept}, {(names[f], int(days)) for f, days in tokens}


def test_sessions_are_kept_30_days_after_they_end(settings: Settings) -> None:
    """Both session tables declare a retention, at SESSION_AUDIT_KEEP (30 days)."""
    keep = {rule.table: rule.keep_for for rule in retention_policies(settings)}
    assert SESSION_AUDIT_KEEP.days == 30
    assert keep["session_families"] == keep["refresh_tokens"] == SESSION_AUDIT_KEEP
    tables = [rule.table for rule in retention_policies(settings)]
    assert tables.index("session_families") < tables.index("refresh_tokens")


async def test_ended_sessions_are_purged_after_30_days_and_twice_is_safe(
    owner: AsyncEngine, settings: Settings, new_tenant: Callable[[], NewTenant]
) -> None:
    """Revoked and expired families go 30 days after they ended, with all their tokens; expired
    tokens of a live family go 30 days after expiry; the rest stays. A second purge deletes 0."""
    tenant_id = new_tenant().tenant_id
    families = await _sessions(owner, tenant_id)
    first = await purge_expired(owner, retention_policies(settings), batch_size=2)
    second = await purge_expired(owner, retention_policies(settings), batch_size=2)
    assert first is not None
    assert second is not None
    assert first["session_families"] >= 3
    assert first["refresh_tokens"] >= 1
    assert (second["session_families"], second["refresh_tokens"]) == (0, 0)
    assert await _remaining(owner, tenant_id, families) == (KEPT_FAMILIES, KEPT_TOKENS)
