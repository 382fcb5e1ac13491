"""The only place that sets the tenant of a database transaction.

`set_config(..., is_local => true)` lasts until the transaction ends, so a pooled connection never
carries one request's tenant into the next borrower's transaction (a session-level `SET` would).
Row-level security policies read it back with `NULLIF(current_setting('app.tenant_id', true), '')`:
with no tenant set, every tenant table reads as empty and refuses writes.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

TENANT_SETTING = "app.tenant_id"
# The expression every tenant policy compares `tenant_id` with (see migration_ops.py).
CURRENT_TENANT_SQL = f"NULLIF(current_setting('{TENANT_SETTING}', true), '')::uuid"


# Built once: constructing a `text()` parses its bind parameters on every call.
_SET_TENANT = text("SELECT set_config(:name, :tenant, true)")


async def set_tenant(session: AsyncSession | AsyncConnection, tenant_id: uuid.UUID) -> None:
    """Scope the session's (or connection's) current transaction to `tenant_id`."""
    await session.execute(_SET_TENANT, {"name": TENANT_SETTING, "tenant": str(tenant_id)})
