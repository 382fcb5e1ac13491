"""Operator actions on tenants and their API keys, run from the console script as the owner role.

Each call opens its own engine, runs one committed transaction and closes the engine again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from app.db.session import Database
from app.tenants.key_lifecycle import (
    IssuedApiKey,
    KeySummary,
    Rotation,
    create_api_key,
    list_api_keys,
    revoke_api_key,
    rotate_api_key,
)
from app.tenants.service import NewTenant, create_tenant

T = TypeVar("T")
# asyncpg waits 60 s for a connection by default; an operator should hear sooner.
CONNECT_TIMEOUT_S = 10


def as_owner(owner_url: str, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one transaction as the owner role, committed before returning."""

    async def run() -> T:
        engine = create_async_engine(
            owner_url, connect_args={"timeout": CONNECT_TIMEOUT_S}, hide_parameters=True
        )
        try:
            return await Database(engine).run(work, None)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def create_tenant_now(owner_url: str, name: str) -> NewTenant:
    """Create tenant `name` with one API key, committed before returning."""
    return as_owner(owner_url, lambda session: create_tenant(session, name))


def create_key_now(
    owner_url: str, tenant_id: uuid.UUID, name: str, lifetime: timedelta | None = None
) -> IssuedApiKey:
    """Issue a key for `tenant_id` that expires `lifetime` from now (never, if None)."""
    return as_owner(owner_url, lambda session: create_api_key(session, tenant_id, name, lifetime))


def list_keys_now(owner_url: str, tenant_id: uuid.UUID) -> list[KeySummary]:
    return as_owner(owner_url, lambda session: list_api_keys(session, tenant_id))


def revoke_key_now(owner_url: str, key_id: uuid.UUID) -> None:
    as_owner(owner_url, lambda session: revoke_api_key(session, key_id))


def rotate_key_now(
    owner_url: str, key_id: uuid.UUID, overlap: timedelta, lifetime: timedelta | None = None
) -> Rotation:
    return as_owner(owner_url, lambda session: rotate_api_key(session, key_id, overlap, lifetime))
