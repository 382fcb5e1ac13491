"""SEC-TENANT at the database layer: raw SQL as the runtime role cannot cross tenants."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from app.db.engine import create_engine
from app.db.retry import sqlstate_of
from app.db.session import Database
from app.db.tenancy import CURRENT_TENANT_SQL, TENANT_SETTING
from app.dev.services import ServiceUrls
from app.tenants.service import NewTenant

INSUFFICIENT_PRIVILEGE = "42501"
# Which server connection this is, and what it sees as the tenant and of the tenant's notes.
_SEEN = (
    "SELECT pg_backend_pid() AS backend, count(*) AS notes,"  # noqa: S608 - no input, a constant
    f" {CURRENT_TENANT_SQL} AS tenant FROM notes"
)


@pytest.fixture
async def runtime_engine(service_urls: ServiceUrls) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(service_urls.runtime_database_url)
    yield engine
    await engine.dispose()


async def _as_tenant(conn: AsyncConnection, tenant_id: uuid.UUID) -> None:
    await conn.execute(
        text("SELECT set_config(:name, :tenant, true)"),
        {"name": TENANT_SETTING, "tenant": str(tenant_id)},
    )


async def _execute_as(
    engine: AsyncEngine, tenant_id: uuid.UUID | None, sql: str, **params: object
) -> None:
    async with engine.begin() as conn:
        if tenant_id is not None:
            await _as_tenant(conn, tenant_id)
        await conn.execute(text(sql), params)


async def _add_note(engine: AsyncEngine, tenant_id: uuid.UUID, title: str) -> uuid.UUID:
    async with engine.begin() as conn:
        await _as_tenant(conn, tenant_id)
        note_id: uuid.UUID = await conn.scalar(
            text("INSERT INTO notes (tenant_id, title) VALUES (:t, :title) RETURNING id"),
            {"t": tenant_id, "title": title},
        )
        return note_id


@pytest.fixture
async def two_tenants(
    runtime_engine: AsyncEngine, new_tenant: Callable[[], NewTenant]
) -> tuple[NewTenant, NewTenant]:
    first, second = new_tenant(), new_tenant()
    await _add_note(runtime_engine, first.tenant_id, "a-1")
    await _add_note(runtime_engine, second.tenant_id, "b-1")
    return first, second


async def test_a_tenant_sees_only_its_own_rows(
    runtime_engine: AsyncEngine, two_tenants: tuple[NewTenant, NewTenant]
) -> None:
    """Even `SELECT *` without a WHERE clause returns only the current tenant's notes."""
    first, _ = two_tenants
    async with runtime_engine.begin() as conn:
        await _as_tenant(conn, first.tenant_id)
        rows = (await conn.execute(text("SELECT tenant_id, title FROM notes"))).all()
        tenants = (await conn.execute(text("SELECT id FROM tenants"))).scalars().all()
    assert [(row.tenant_id, row.title) for row in rows] == [(first.tenant_id, "a-1")]
    assert tenants == [first.tenant_id]


async def test_another_tenants_rows_cannot_be_changed(
    runtime_engine: AsyncEngine, two_tenants: tuple[NewTenant, NewTenant]
) -> None:
    """UPDATE and DELETE aimed at another tenant's rows touch nothing."""
    first, second = two_tenants
    async with runtime_engine.begin() as conn:
        await _as_tenant(conn, first.tenant_id)
        updated = await conn.execute(
            text("UPDATE notes SET title = 'pwned' WHERE tenant_id = :t"), {"t": second.tenant_id}
        )
        deleted = await conn.execute(
            text("DELETE FROM notes WHERE tenant_id = :t"), {"t": second.tenant_id}
        )
    assert (updated.rowcount, deleted.rowcount) == (0, 0)
    async with runtime_engine.begin() as conn:
        await _as_tenant(conn, second.tenant_id)
        assert await conn.scalar(text("SELECT title FROM notes")) == "b-1"


async def test_writing_a_row_for_another_tenant_fails_in_the_database(
    runtime_engine: AsyncEngine, two_tenants: tuple[NewTenant, NewTenant]
) -> None:
    """WITH CHECK refuses an INSERT or an UPDATE that would place a row in another tenant."""
    first, second = two_tenants
    for statement in (
        "INSERT INTO notes (tenant_id, title) VALUES (:other, 'smuggled')",
        "UPDATE notes SET tenant_id = :other",
    ):
        with pytest.raises(DBAPIError) as caught:
            await _execute_as(runtime_engine, first.tenant_id, statement, other=second.tenant_id)
        assert sqlstate_of(caught.value) == INSUFFICIENT_PRIVILEGE


async def test_without_a_tenant_nothing_is_visible_or_writable(
    runtime_engine: AsyncEngine, two_tenants: tuple[NewTenant, NewTenant]
) -> None:
    """No tenant set: every tenant table reads as empty and refuses inserts."""
    first, _ = two_tenants
    async with runtime_engine.begin() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM notes")) == 0
        assert await conn.scalar(text("SELECT count(*) FROM tenants")) == 0
    with pytest.raises(DBAPIError):
        await _execute_as(
            runtime_engine,
            None,
            "INSERT INTO notes (tenant_id, title) VALUES (:t, 'x')",
            t=first.tenant_id,
        )


async def test_the_tenant_does_not_outlive_its_transaction(
    service_urls: ServiceUrls, two_tenants: tuple[NewTenant, NewTenant]
) -> None:
    """The app's set_tenant, on a pool of one connection: the next transaction has no tenant."""
    first, _ = two_tenants
    engine = create_engine(service_urls.runtime_database_url, pool_size=1, max_overflow=0)
    database = Database(engine)
    try:
        async with database.transaction(first.tenant_id) as session:  # commits on leaving
            scoped = (await session.execute(text(_SEEN))).one()
        async with database.transaction(None) as session:
            unscoped = (await session.execute(text(_SEEN))).one()
    finally:
        await engine.dispose()
    assert unscoped.backend == scoped.backend  # the same pooled connection
    assert (scoped.notes, scoped.tenant) == (1, first.tenant_id)
    assert (unscoped.notes, unscoped.tenant) == (0, None)


async def test_runtime_role_cannot_list_api_keys(
    runtime_engine: AsyncEngine, two_tenants: tuple[NewTenant, NewTenant]
) -> None:
    """The key table is closed to the runtime role, even with a tenant set."""
    first, _ = two_tenants
    with pytest.raises(DBAPIError) as caught:
        await _execute_as(runtime_engine, first.tenant_id, "SELECT * FROM api_keys")
    assert sqlstate_of(caught.value) == INSUFFICIENT_PRIVILEGE
