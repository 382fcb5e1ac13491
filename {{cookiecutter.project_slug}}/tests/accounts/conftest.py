"""Fixtures of the accounts tests: the runtime role's Database and users made as the owner."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from app.auth.passwords import hash_password
from app.db.engine import create_engine
from app.db.session import Database
from app.dev.services import ServiceUrls
from app.tenants.admin import as_owner
from app.tenants.memberships import NewMembership, add_membership

# Passes the policy (tests/accounts/test_password_policy.py); every member made here has it.
PASSWORD = "plum orbit cactus lantern"


@dataclass(frozen=True)
class Member:
    user_id: uuid.UUID
    email: str
    tenant_id: uuid.UUID
    role: str


@pytest.fixture(scope="session")
def password_hash() -> str:
    """One argon2id hash of PASSWORD, made once: hashing costs ~0.1 s."""
    return hash_password(PASSWORD)


@pytest.fixture
async def runtime_database(service_urls: ServiceUrls) -> AsyncIterator[Database]:
    """The service's own view of the database: the runtime role, under RLS."""
    engine = create_engine(service_urls.runtime_database_url)
    yield Database(engine)
    await engine.dispose()


@pytest.fixture
def add_member(service_urls: ServiceUrls, password_hash: str) -> Callable[..., Member]:
    """Make `email` (a fresh address by default) a member of `tenant_id`, as `create-user` does."""

    def add(
        tenant_id: uuid.UUID,
        role: str = "member",
        email: str | None = None,
        stored_hash: str | None = None,
    ) -> Member:
        address = email or f"user-{uuid.uuid4().hex[:10]}@example.com"

        async def work(session: AsyncSession) -> NewMembership:
            return await add_membership(
                session, address, stored_hash or password_hash, tenant_id, role
            )

        # as_owner runs its own event loop: give it a thread, async tests call this too.
        with ThreadPoolExecutor(max_workers=1) as pool:
            added = pool.submit(as_owner, service_urls.owner_database_url, work).result()
        return Member(added.user_id, address, tenant_id, role)

    return add


@pytest.fixture
def stored_hash(
    service_urls: ServiceUrls,
) -> Callable[[uuid.UUID], Awaitable[tuple[str, datetime]]]:
    """Read a user's password hash and password_changed_at as the owner."""

    async def read(user_id: uuid.UUID) -> tuple[str, datetime]:
        engine = create_async_engine(service_urls.owner_database_url)
        try:
            async with engine.connect() as conn:
                row = (
                    await conn.execute(
                        text("SELECT password_hash, password_changed_at FROM users WHERE id = :u"),
                        {"u": user_id},
                    )
                ).one()
                return str(row.password_hash), row.password_changed_at
        finally:
            await engine.dispose()

    return read
