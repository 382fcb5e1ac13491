"""Login's credential check: one answer for every wrong login, a tenant choice only after the
password, rehash on login, and the membership check of session requests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

import pytest
from argon2 import PasswordHasher
from sqlalchemy import text

from app.auth.passwords import WeakPasswordError, needs_rehash, verify_password
from app.db.session import Database
from app.http.errors import NotFoundError
from app.tenants.service import NewTenant
from app.tenants.users import (
    InvalidCredentials,
    LoginGrant,
    TenantChoiceRequired,
    check_credentials,
    membership_role,
    set_password,
)
from tests.accounts.conftest import PASSWORD, Member

AddMember = Callable[..., Member]
StoredHash = Callable[[uuid.UUID], Awaitable[tuple[str, datetime]]]


async def _refusal(database: Database, email: str, password: str, tenant: uuid.UUID | None) -> str:
    with pytest.raises(InvalidCredentials) as raised:
        await check_credentials(database, email, password, tenant)
    error = raised.value
    return f"{error.status} {error.slug} {error.title} {error.detail} {error.extensions}"


async def test_a_right_password_grants_the_only_membership(
    runtime_database: Database, add_member: AddMember, new_tenant: Callable[[], NewTenant]
) -> None:
    """Email (any case, padded) and password of a one-tenant user: that tenant and its role."""
    member = add_member(new_tenant().tenant_id, role="owner")
    grant = await check_credentials(runtime_database, f"  {member.email.upper()} ", PASSWORD, None)
    assert grant == LoginGrant(member.user_id, member.email, member.tenant_id, "owner")


async def test_unknown_email_wrong_password_and_other_tenant_answer_alike(
    runtime_database: Database, add_member: AddMember, new_tenant: Callable[[], NewTenant]
) -> None:
    """Unknown email, wrong password, a tenant the user is not in: the same 401, word for word."""
    member = add_member(new_tenant().tenant_id)
    stranger = new_tenant().tenant_id
    answers = {
        await _refusal(runtime_database, "nobody-here@example.com", PASSWORD, None),
        await _refusal(runtime_database, member.email, PASSWORD + "x", None),
        await _refusal(runtime_database, member.email, PASSWORD + "x", member.tenant_id),
        await _refusal(runtime_database, member.email, PASSWORD, stranger),
    }
    assert len(answers) == 1
    assert answers.pop().startswith("401 invalid-credentials")


async def test_an_unknown_email_costs_what_a_wrong_password_costs(
    runtime_database: Database, add_member: AddMember, new_tenant: Callable[[], NewTenant]
) -> None:
    """An unknown email still runs one argon2 verification: its answer is no faster."""
    member = add_member(new_tenant().tenant_id)

    async def fastest_of_three(email: str) -> float:
        times = []
        for _ in range(3):
            started = time.perf_counter()
            with pytest.raises(InvalidCredentials):
                await check_credentials(runtime_database, email, "wrong " + PASSWORD, None)
            times.append(time.perf_counter() - started)
        return min(times)

    wrong_password = await fastest_of_three(member.email)
    unknown_email = await fastest_of_three(f"x{member.email}")
    # Without the dummy verification the unknown email answers in a few ms, against ~100 ms.
    assert unknown_email > 0.5 * wrong_password


async def test_several_memberships_need_a_tenant_choice_after_the_password(
    runtime_database: Database, add_member: AddMember, new_tenant: Callable[[], NewTenant]
) -> None:
    """Two tenants, no tenant_id: TenantChoiceRequired listing both; a wrong password: 401."""
    first = add_member(new_tenant().tenant_id)
    second = add_member(new_tenant().tenant_id, role="owner", email=first.email.upper())
    assert second.email.lower() == first.email
    with pytest.raises(TenantChoiceRequired) as raised:
        await check_credentials(runtime_database, first.email, PASSWORD, None)
    assert raised.value.status == 422
    assert set(raised.value.extensions["tenant_ids"]) == {
        str(first.tenant_id),
        str(second.tenant_id),
    }
    with pytest.raises(InvalidCredentials):
        await check_credentials(runtime_database, first.email, "wrong " + PASSWORD, None)
    grant = await check_credentials(runtime_database, first.email, PASSWORD, second.tenant_id)
    assert (grant.tenant_id, grant.role) == (second.tenant_id, "owner")


async def test_a_user_without_membership_cannot_log_in(
    runtime_database: Database, add_member: AddMember, new_tenant: Callable[[], NewTenant]
) -> None:
    """A user whose only membership was removed (by its tenant) gets the same 401."""
    member = add_member(new_tenant().tenant_id)
    async with runtime_database.transaction(member.tenant_id) as session:
        removed = await session.execute(
            text("DELETE FROM memberships WHERE user_id = :u"), {"u": member.user_id}
        )
        assert removed.rowcount == 1  # type: ignore[attr-defined]
    with pytest.raises(InvalidCredentials):
        await check_credentials(runtime_database, member.email, PASSWORD, None)


async def test_login_rehashes_a_hash_made_with_other_parameters(
    runtime_database: Database,
    add_member: AddMember,
    new_tenant: Callable[[], NewTenant],
    stored_hash: StoredHash,
) -> None:
    """A hash with older (weaker) parameters is replaced at login; the password still works."""
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    old_hash = weak.hash(PASSWORD)
    member = add_member(new_tenant().tenant_id, stored_hash=old_hash)
    _, changed_before = await stored_hash(member.user_id)
    await check_credentials(runtime_database, member.email, PASSWORD, None)
    new_hash, changed_after = await stored_hash(member.user_id)
    assert new_hash != old_hash
    assert new_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert not needs_rehash(new_hash)
    assert verify_password(new_hash, PASSWORD)
    # A rehash is no password change: sessions are not revoked for it.
    assert changed_after == changed_before
    await check_credentials(runtime_database, member.email, PASSWORD, None)
    assert (await stored_hash(member.user_id))[0] == new_hash


async def test_membership_role_sees_only_the_current_tenant(
    runtime_database: Database, add_member: AddMember, new_tenant: Callable[[], NewTenant]
) -> None:
    """The role in the transaction's tenant; None in another tenant and with no tenant set."""
    member = add_member(new_tenant().tenant_id, role="owner")
    other = new_tenant().tenant_id
    async with runtime_database.transaction(member.tenant_id) as session:
        assert await membership_role(session, member.user_id) == "owner"
    async with runtime_database.transaction(other) as session:
        assert await membership_role(session, member.user_id) is None
    async with runtime_database.transaction(None) as session:
        assert await membership_role(session, member.user_id) is None


async def test_set_password_replaces_the_hash_and_stamps_the_change(
    runtime_database: Database,
    add_member: AddMember,
    new_tenant: Callable[[], NewTenant],
    stored_hash: StoredHash,
) -> None:
    """The new password logs in, the old one no longer does, password_changed_at moves."""
    member = add_member(new_tenant().tenant_id)
    _, changed_before = await stored_hash(member.user_id)
    new_password = "velvet harbour quartz meadow"
    await set_password(runtime_database, member.user_id, new_password, email=member.email)
    new_hash, changed_after = await stored_hash(member.user_id)
    assert new_hash.startswith("$argon2id$")
    assert changed_after > changed_before
    await check_credentials(runtime_database, member.email, new_password, None)
    with pytest.raises(InvalidCredentials):
        await check_credentials(runtime_database, member.email, PASSWORD, None)


async def test_set_password_refuses_weak_passwords_and_unknown_users(
    runtime_database: Database, add_member: AddMember, new_tenant: Callable[[], NewTenant]
) -> None:
    """A weak password is a 422 naming the rule; an unknown user id a 404."""
    member = add_member(new_tenant().tenant_id)
    with pytest.raises(WeakPasswordError, match="at least 15"):
        await set_password(runtime_database, member.user_id, "short")
    with pytest.raises(WeakPasswordError, match="email"):
        await set_password(runtime_database, member.user_id, member.email, email=member.email)
    with pytest.raises(NotFoundError):
        await set_password(runtime_database, uuid.uuid4(), "another fine long phrase")
