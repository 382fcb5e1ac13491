"""SEC-TENANT for users and memberships: raw SQL as the runtime role stays inside its tenant, and
credentials are reachable only through the login functions."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from app.db.retry import sqlstate_of
from app.db.tenancy import TENANT_SETTING
from app.dev.services import ServiceUrls
from app.tenants.service import NewTenant
from tests.accounts.conftest import Member

INSUFFICIENT_PRIVILEGE = "42501"
AddMember = Callable[..., Member]


@pytest.fixture
async def runtime_engine(service_urls: ServiceUrls) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(service_urls.runtime_database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def owner_engine(service_urls: ServiceUrls) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(service_urls.owner_database_url)
    yield engine
    await engine.dispose()


async def _as_tenant(conn: AsyncConnection, tenant_id: uuid.UUID) -> None:
    await conn.execute(
        text("SELECT set_config(:name, :tenant, true)"),
        {"name": TENANT_SETTING, "tenant": str(tenant_id)},
    )


async def _refusal(
    engine: AsyncEngine, tenant_id: uuid.UUID, sql: str, params: dict[str, uuid.UUID]
) -> DBAPIError:
    """The error the database answers `sql` with, run as the runtime role in `tenant_id`."""
    try:
        async with engine.begin() as conn:
            await _as_tenant(conn, tenant_id)
            await conn.execute(text(sql), params)
    except DBAPIError as error:
        return error
    raise AssertionError(f"not refused: {sql}")


async def test_a_tenant_sees_only_its_own_members_and_their_users(
    runtime_engine: AsyncEngine, add_member: AddMember, new_tenant: Callable[[], NewTenant]
) -> None:
    """`SELECT *` without WHERE, as the runtime role in tenant A: none of tenant B's rows."""
    a_member = add_member(new_tenant().tenant_id)
    b_member = add_member(new_tenant().tenant_id)
    async with runtime_engine.begin() as conn:
        await _as_tenant(conn, a_member.tenant_id)
        memberships = (await conn.execute(text("SELECT user_id, tenant_id FROM memberships"))).all()
        users = (await conn.execute(text("SELECT id FROM users"))).scalars().all()
        b_rows = await conn.scalar(
            text("SELECT count(*) FROM users WHERE id = :b"), {"b": b_member.user_id}
        )
    assert [tuple(row) for row in memberships] == [(a_member.user_id, a_member.tenant_id)]
    assert users == [a_member.user_id]
    assert b_rows == 0


async def test_without_a_tenant_no_user_or_membership_is_visible(
    runtime_engine: AsyncEngine, add_member: AddMember, new_tenant: Callable[[], NewTenant]
) -> None:
    """No tenant set: both tables read as empty to the runtime role."""
    add_member(new_tenant().tenant_id)
    async with runtime_engine.begin() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM users")) == 0
        assert await conn.scalar(text("SELECT count(*) FROM memberships")) == 0


async def test_a_tenant_cannot_add_itself_to_another_tenant_or_write_users(
    runtime_engine: AsyncEngine, add_member: AddMember, new_tenant: Callable[[], NewTenant]
) -> None:
    """Inserting a membership of tenant B from tenant A fails RLS; users cannot be written."""
    a_member = add_member(new_tenant().tenant_id)
    other = new_tenant().tenant_id
    statements = [
        ("INSERT INTO memberships (user_id, tenant_id, role) VALUES (:u, :o, 'owner')", None),
        ("UPDATE users SET password_hash = 'x' WHERE id = :u", INSUFFICIENT_PRIVILEGE),
        ("INSERT INTO users (email, password_hash) VALUES ('e@x.io', 'x')", INSUFFICIENT_PRIVILEGE),
    ]
    for sql, sqlstate in statements:
        params = {"u": a_member.user_id, "o": other}
        error = await _refusal(runtime_engine, a_member.tenant_id, sql, params)
        if sqlstate is not None:
            assert sqlstate_of(error) == sqlstate
        else:
            assert "row-level security" in str(error)


async def test_only_the_runtime_role_may_call_the_login_functions(
    owner_engine: AsyncEngine, service_urls: ServiceUrls
) -> None:
    """The SECURITY DEFINER functions are revoked from PUBLIC and granted to the runtime role."""
    functions = [
        "user_login_memberships(text)",
        "set_user_password(uuid, text)",
        "rehash_user_password(uuid, text, text)",
    ]
    role = make_url(service_urls.runtime_database_url).username
    async with owner_engine.connect() as conn:
        for function in functions:
            granted = await conn.scalar(
                text("SELECT has_function_privilege(:r, :f, 'EXECUTE')"), {"r": role, "f": function}
            )
            public = await conn.scalar(
                text(
                    "SELECT bool_or(a.grantee = 0) FROM pg_proc p, aclexplode(p.proacl) a "
                    "WHERE p.oid = CAST(:f AS regprocedure)"
                ),
                {"f": function},
            )
            assert (function, granted, public) == (function, True, False)


async def test_users_table_forces_row_level_security(owner_engine: AsyncEngine) -> None:
    """`users` has no tenant_id, so the schema fitness test does not list it: checked here."""
    async with owner_engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT relrowsecurity, relforcerowsecurity FROM pg_class "
                    "WHERE relname = 'users'"
                )
            )
        ).one()
        policy = await conn.scalar(
            text(
                "SELECT pg_get_expr(polqual, polrelid) FROM pg_policy "
                "WHERE polrelid = 'users'::regclass AND polcmd = '*'"
            )
        )
    assert tuple(row) == (True, True)
    assert TENANT_SETTING in policy
    assert "memberships" in policy


async def test_emails_are_unique_whatever_their_case(
    owner_engine: AsyncEngine, add_member: AddMember, new_tenant: Callable[[], NewTenant]
) -> None:
    """A second user whose email differs only in case violates the unique index."""
    member = add_member(new_tenant().tenant_id)
    with pytest.raises(IntegrityError):
        async with owner_engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO users (email, password_hash) VALUES (:e, 'x')"),
                {"e": member.email.upper()},
            )
