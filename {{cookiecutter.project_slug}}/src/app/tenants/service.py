"""Creating tenants and issuing their API keys (an operator action, run as the owner role)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.api_keys import issue_key
from app.db.tenancy import set_tenant
from app.tenants.models import ApiKey, Tenant


@dataclass(frozen=True)
class NewTenant:
    tenant_id: uuid.UUID
    api_key: str


async def create_tenant(session: AsyncSession, name: str) -> NewTenant:
    """Insert a tenant and its first API key; the plaintext key is returned once, never stored."""
    tenant_id = uuid.uuid4()
    # Row-level security is forced even for the owner, so the insert runs as the new tenant.
    await set_tenant(session, tenant_id)
    key = issue_key()
    session.add(Tenant(id=tenant_id, name=name))
    await session.flush()
    session.add(
        ApiKey(id=key.key_id, tenant_id=tenant_id, name="default", secret_hash=key.secret_hash)
    )
    await session.flush()
    return NewTenant(tenant_id=tenant_id, api_key=key.plaintext)
