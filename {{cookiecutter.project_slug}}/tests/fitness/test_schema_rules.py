"""Schema rules read from the live catalog: they fail when a table you add breaks them.

Add a table with a `tenant_id` and forget RLS, or a foreign key without an index, and this suite
names the table.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from app.db.tenancy import TENANT_SETTING
from app.dev.services import ServiceUrls

# Tables scoped by a column other than tenant_id: the tenant row itself.
TENANT_KEY_COLUMN = {"tenants": "id"}


@pytest.fixture
async def catalog(service_urls: ServiceUrls) -> AsyncIterator[AsyncConnection]:
    engine = create_async_engine(service_urls.owner_database_url)
    async with engine.connect() as conn:
        yield conn
    await engine.dispose()


async def _tenant_tables(catalog: AsyncConnection) -> list[str]:
    rows = await catalog.execute(
        text(
            "SELECT DISTINCT table_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND column_name = 'tenant_id'"
        )
    )
    return sorted({row[0] for row in rows} | set(TENANT_KEY_COLUMN))


async def test_every_tenant_table_forces_rls_with_checked_policies(
    catalog: AsyncConnection,
) -> None:
    """RLS enabled and forced, and a policy for all commands with USING and WITH CHECK."""
    tables = await _tenant_tables(catalog)
    assert "notes" in tables
    problems: dict[str, str] = {}
    for table in tables:
        enabled, forced = (
            await catalog.execute(
                text("SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = :t"),
                {"t": table},
            )
        ).one()
        policies = (
            await catalog.execute(
                text(
                    "SELECT pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid) "
                    "FROM pg_policy WHERE polrelid = CAST(:t AS regclass) AND polcmd = '*'"
                ),
                {"t": table},
            )
        ).all()
        checked = [
            p
            for p in policies
            if p[0] and p[1] and TENANT_SETTING in p[0] and TENANT_SETTING in p[1]
        ]
        if not (enabled and forced):
            problems[table] = "row-level security not enabled and forced"
        elif not checked:
            problems[table] = "no policy filtering reads and checking writes on app.tenant_id"
    assert problems == {}


async def test_runtime_role_is_no_owner_superuser_or_bypasser(
    catalog: AsyncConnection, service_urls: ServiceUrls
) -> None:
    """The role the service runs as owns nothing and cannot bypass row-level security."""
    role = make_url(service_urls.runtime_database_url).username
    superuser, bypass = (
        await catalog.execute(
            text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = :r"), {"r": role}
        )
    ).one()
    owned = (
        await catalog.execute(
            text(
                "SELECT relname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
                "WHERE r.rolname = :r "
                "UNION ALL SELECT proname FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner "
                "WHERE r.rolname = :r"
            ),
            {"r": role},
        )
    ).all()
    assert (superuser, bypass, owned) == (False, False, [])


async def test_every_foreign_key_is_indexed(catalog: AsyncConnection) -> None:
    """Each foreign key's columns lead some index, so deletes and joins never scan the table."""
    rows = await catalog.execute(
        text(
            "SELECT c.conrelid::regclass::text, c.conname FROM pg_constraint c "
            "WHERE c.contype = 'f' AND NOT EXISTS ("
            "  SELECT 1 FROM pg_index i WHERE i.indrelid = c.conrelid"
            "  AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] = c.conkey)"
        )
    )
    assert [tuple(row) for row in rows] == []


async def test_tenant_indexes_lead_with_tenant_id(catalog: AsyncConnection) -> None:
    """On tenant tables every index but the primary key starts with tenant_id."""
    rows = await catalog.execute(
        text(
            "SELECT t.relname, ix.relname FROM pg_index i "
            "JOIN pg_class t ON t.oid = i.indrelid JOIN pg_class ix ON ix.oid = i.indexrelid "
            "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = i.indkey[0] "
            "WHERE NOT i.indisprimary AND a.attname <> 'tenant_id' AND EXISTS ("
            "  SELECT 1 FROM pg_attribute x WHERE x.attrelid = t.oid AND x.attname = 'tenant_id')"
        )
    )
    assert [tuple(row) for row in rows] == []
