"""REL-QUERY at the planner: the tenant-scoped list uses the tenant index, not a table scan.

Checks the plan, which is deterministic, not the time (`make bench` measures time).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.db.tenancy import TENANT_SETTING
from app.dev.services import ServiceUrls
from app.notes.repository import list_statement
from app.notes.schemas import NoteListQuery
from app.tenants.service import NewTenant

ROWS_PER_TENANT = 400


def _index_names(plan: dict[str, Any]) -> set[str]:
    names = {plan["Index Name"]} if "Index Name" in plan else set()
    for child in plan.get("Plans", []):
        names |= _index_names(child)
    return names


async def _seed(engine: AsyncEngine, tenant_id: uuid.UUID) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("SELECT set_config(:n, :t, true)"), {"n": TENANT_SETTING, "t": str(tenant_id)}
        )
        await conn.execute(
            text(
                "INSERT INTO notes (tenant_id, title) "
                "SELECT :t, 'n' || g FROM generate_series(1, :rows) g"
            ),
            {"t": tenant_id, "rows": ROWS_PER_TENANT},
        )


async def _plan(engine: AsyncEngine, tenant_id: uuid.UUID) -> dict[str, Any]:
    statement = list_statement(tenant_id, NoteListQuery(), after=None).compile(
        dialect=engine.dialect, compile_kwargs={"literal_binds": True}
    )
    async with engine.begin() as conn:
        await conn.execute(
            text("SELECT set_config(:n, :t, true)"), {"n": TENANT_SETTING, "t": str(tenant_id)}
        )
        document = (await conn.execute(text(f"EXPLAIN (FORMAT JSON) {statement}"))).scalar_one()
    parsed = document if isinstance(document, list) else json.loads(document)
    plan: dict[str, Any] = parsed[0]["Plan"]
    return plan


async def test_tenant_list_uses_the_tenant_index(
    service_urls: ServiceUrls, new_tenant: Callable[[], NewTenant]
) -> None:
    """With many tenants' rows present, listing one tenant's notes walks its tenant index."""
    tenants = [new_tenant() for _ in range(10)]
    runtime = create_async_engine(service_urls.runtime_database_url)
    owner = create_async_engine(service_urls.owner_database_url)
    try:
        for tenant in tenants:
            await _seed(runtime, tenant.tenant_id)
        async with owner.begin() as conn:
            await conn.execute(text("ANALYZE notes"))
        plan = await _plan(runtime, tenants[0].tenant_id)
    finally:
        await runtime.dispose()
        await owner.dispose()
    assert "ix_notes_tenant_id_created_at_id" in _index_names(plan), plan
