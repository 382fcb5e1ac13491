"""Operator actions on tenants, run from the console script as the owner role."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import create_async_engine

from app.db.session import Database
from app.tenants.service import NewTenant, create_tenant


async def _create(owner_url: str, name: str) -> NewTenant:
    engine = create_async_engine(owner_url)
    try:
        return await Database(engine).run(lambda session: create_tenant(session, name), None)
    finally:
        await engine.dispose()


def create_tenant_now(owner_url: str, name: str) -> NewTenant:
    """Create tenant `name` with one API key, committed before returning."""
    return asyncio.run(_create(owner_url, name))
