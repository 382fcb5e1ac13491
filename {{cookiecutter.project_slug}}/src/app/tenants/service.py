"""Creating tenants and issuing their API keys (an operator action, run as the owner role)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tenancy import set_tenant
from app.tenants.key_lifecycle import insert_api_key
from app.tenants.models import Tenant


@dataclass(frozen=True)
class NewTenant:
    tenant_id: uuid.UUID
    api_key: str


async def create_tenant(session: AsyncSession, name: str) -> NewTenant:
    """Insert a tenant and its first API key (no expiry); the plaintext key is returned once,
    never stored."""
    tenant_id = uuid.uuid4()
    # Row-level security is forced even for the owner, so the insert runs as the new tenant.
    await set_tenant(session, tenant_id)
    session.add(Tenant(id=tenant_id, name=name))
    await session.flush()
    key = await insert_api_key(session, tenant_id, "default", lifetime=None)
    return NewTenant(tenant_id=tenant_id, api_key=key.api_key)
