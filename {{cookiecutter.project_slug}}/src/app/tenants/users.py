"""Users' credentials and memberships, as the login and session code asks about them.

Login comes before any tenant is known, so credentials are read by email through the SECURITY
DEFINER functions of migration 0009; the runtime role cannot list users or memberships of
another tenant. Once a tenant is set (`app.db.tenancy`), `membership_role` reads through RLS.

Every failure of `check_credentials` before the password is known to be right is the same
`InvalidCredentials` after the same work (one argon2 verification), so an answer tells nobody
whether an email has an account.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.passwords import (
    check_password_policy,
    hash_password,
    needs_rehash,
    verify_dummy,
    verify_password,
)
from app.db.session import Database
from app.http.errors import NotFoundError, UnauthorizedError, UnprocessableError

_LOGIN_MEMBERSHIPS = text(
    "SELECT user_id, email, password_hash, tenant_id, role FROM user_login_memberships(:email)"
)
_REHASH = text("SELECT rehash_user_password(:user_id, :old_hash, :new_hash)")
_SET_PASSWORD = text("SELECT set_user_password(:user_id, :password_hash)")
_MEMBERSHIP_ROLE = text("SELECT role FROM memberships WHERE user_id = :user_id")


@dataclass(frozen=True)
class LoginGrant:
    """Who logged in, into which tenant, with which role."""

    user_id: uuid.UUID
    email: str
    tenant_id: uuid.UUID
    role: str


class InvalidCredentials(UnauthorizedError):  # noqa: N818 - the name the login code uses
    """Unknown email, wrong password or no membership of the tenant asked for: one answer."""

    slug = "invalid-credentials"
    title = "Invalid credentials"
    DETAIL = "The email address or the password is not correct."

    def __init__(self) -> None:
        super().__init__(self.DETAIL)


class TenantChoiceRequired(UnprocessableError):  # noqa: N818 - a name the login code uses
    """The password is right and the user belongs to several tenants: the login must name one.

    422, like any request missing a field it needs; raised only after the password is verified,
    so the tenant ids it lists (`tenant_ids`) are told only to the account's holder.
    """

    slug = "tenant-choice-required"
    title = "Tenant choice required"

    def __init__(self, tenant_ids: list[uuid.UUID]) -> None:
        super().__init__(
            "This account belongs to several tenants; repeat the login with `tenant_id`.",
            tenant_ids=[str(tenant_id) for tenant_id in tenant_ids],
        )


def _chosen_membership(rows: list[Row[Any]], tenant_id: uuid.UUID | None) -> Row[Any]:
    memberships = [row for row in rows if row.tenant_id is not None]
    if tenant_id is not None:
        chosen = [row for row in memberships if row.tenant_id == tenant_id]
    elif len(memberships) > 1:
        raise TenantChoiceRequired([row.tenant_id for row in memberships])
    else:
        chosen = memberships
    if not chosen:
        raise InvalidCredentials
    return chosen[0]


async def check_credentials(
    database: Database, email: str, password: str, tenant_id: uuid.UUID | None
) -> LoginGrant:
    """The grant for a right email and password and a membership of `tenant_id` (or of the
    user's only tenant when it is None). Rehashes the password when its parameters are old.

    Raises `InvalidCredentials` (401) or, with the password verified, `TenantChoiceRequired`.
    """
    async with database.transaction(None) as session:
        rows = list((await session.execute(_LOGIN_MEMBERSHIPS, {"email": email.strip()})).all())
    if not rows:
        await asyncio.to_thread(verify_dummy, password)
        raise InvalidCredentials
    stored_hash = rows[0].password_hash
    if not await asyncio.to_thread(verify_password, stored_hash, password):
        raise InvalidCredentials
    membership = _chosen_membership(rows, tenant_id)
    if needs_rehash(stored_hash):
        await _rehash(database, membership.user_id, stored_hash, password)
    return LoginGrant(
        user_id=membership.user_id,
        email=membership.email,
        tenant_id=membership.tenant_id,
        role=membership.role,
    )


async def _rehash(database: Database, user_id: uuid.UUID, old_hash: str, password: str) -> None:
    new_hash = await asyncio.to_thread(hash_password, password)
    async with database.transaction(None) as session:
        await session.execute(
            _REHASH, {"user_id": user_id, "old_hash": old_hash, "new_hash": new_hash}
        )


async def membership_role(session: AsyncSession, user_id: uuid.UUID) -> str | None:
    """The user's role in the session's current tenant, or None when not a member of it.

    The tenant comes from the transaction (`app.db.tenancy.set_tenant`): RLS shows no other
    tenant's memberships, and none at all when no tenant is set.
    """
    role: str | None = await session.scalar(_MEMBERSHIP_ROLE, {"user_id": user_id})
    return role


async def set_password(
    database: Database, user_id: uuid.UUID, new_password: str, *, email: str | None = None
) -> None:
    """Replace the user's password (policy-checked; `email`, when given, must not be it) and
    stamp `password_changed_at`. Revoking the user's sessions is the caller's job.

    Raises `WeakPasswordError` (422) or `NotFoundError` (404) for an unknown user.
    """
    check_password_policy(new_password, email)
    new_hash = await asyncio.to_thread(hash_password, new_password)
    async with database.transaction(None) as session:
        changed = await session.scalar(
            _SET_PASSWORD, {"user_id": user_id, "password_hash": new_hash}
        )
    if not changed:
        raise NotFoundError("No such user.")
