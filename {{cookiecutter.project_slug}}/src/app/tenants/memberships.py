"""Adding a user to a tenant (an operator action, run as the owner role by `create-user`).

An email already in use (compared case-insensitively) names the existing user: the membership is
added to it and its password is left unchanged (`new_user` is False). Passwords are changed only
by their holder, through `app.tenants.users.set_password`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tenancy import set_tenant
from app.tenants.models import Tenant
from app.tenants.user_models import ROLES, Membership

MAX_EMAIL_LENGTH = 320
# `ON CONFLICT` on the unique index over lower(email): a concurrent create-user of the same
# address finds the row the other one inserted instead of failing.
_INSERT_USER = text(
    "INSERT INTO users (email, password_hash) VALUES (:email, :password_hash) "
    "ON CONFLICT ((lower(email))) DO NOTHING RETURNING id"
)
_FIND_USER = text("SELECT id FROM users WHERE lower(email) = lower(:email)")


class MembershipRefusedError(Exception):
    """The membership cannot be added; the message is one line for the operator."""


@dataclass(frozen=True)
class NewMembership:
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    role: str
    new_user: bool


def email_problem(email: str) -> str | None:
    """Why `email` cannot name an account, or None. Deliverability is not checked here."""
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain.strip(".") or "@" in domain:
        return "the email address must look like name@example.com"
    if len(email) > MAX_EMAIL_LENGTH or any(character.isspace() for character in email):
        return f"the email address must have no spaces and at most {MAX_EMAIL_LENGTH} characters"
    return None


async def add_membership(
    session: AsyncSession, email: str, password_hash: str, tenant_id: uuid.UUID, role: str
) -> NewMembership:
    """Make the user with `email` (created with `password_hash` if new) a `role` of `tenant_id`.

    Raises `MembershipRefusedError` for an unknown tenant, a bad role or an existing membership.
    """
    if role not in ROLES:
        raise MembershipRefusedError(f"role must be one of {', '.join(ROLES)}")
    # Row-level security is forced for the owner too: scoped to the tenant, it sees that tenant.
    await set_tenant(session, tenant_id)
    if await session.get(Tenant, tenant_id) is None:
        raise MembershipRefusedError(f"no tenant {tenant_id}: create it with `create-tenant`")
    params = {"email": email, "password_hash": password_hash}
    user_id = await session.scalar(_INSERT_USER, params)
    new_user = user_id is not None
    if user_id is None:
        user_id = await session.scalar(_FIND_USER, params)
    added = await session.execute(
        insert(Membership)
        .values(user_id=user_id, tenant_id=tenant_id, role=role)
        .on_conflict_do_nothing()
        .returning(Membership.role)
    )
    if added.first() is None:
        raise MembershipRefusedError(f"{email} is already a member of tenant {tenant_id}")
    assert user_id is not None  # noqa: S101 - inserted or found above
    return NewMembership(user_id=user_id, tenant_id=tenant_id, role=role, new_user=new_user)
