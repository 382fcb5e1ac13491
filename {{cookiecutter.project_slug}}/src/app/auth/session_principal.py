"""Checking a browser session's access cookie on a request.

The JWT's signature and lifetime are checked in-process; then one short tenant-scoped
transaction asks the database that its family is live (not logged out, not revoked) and the user
is still a member of the tenant, for the current role. So logout, logout-all, a password change,
a detected refresh reuse and a removed membership all end access at the next request, not at
the access token's expiry (docs/authentication.md, "Revocation").
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.session_store import family_is_live
from app.auth.signing_keys import SigningKeys
from app.auth.tokens import AccessClaims, verify_access_token
from app.db.session import Database
from app.http.errors import UnauthorizedError
from app.tenants.users import membership_role

INVALID_SESSION = "The session cookie is invalid or expired; refresh the session or sign in."
ENDED_SESSION = "The session has ended; sign in again."


@dataclass(frozen=True)
class SessionGrant:
    """A verified session: the token's claims and the role the database holds now."""

    claims: AccessClaims
    role: str


async def verify_session(database: Database, keys: SigningKeys, token: str) -> SessionGrant:
    """The live session of `token`, or a 401."""
    claims = verify_access_token(keys, token)
    if claims is None:
        raise UnauthorizedError(INVALID_SESSION)

    async def current_role(session: AsyncSession) -> str | None:
        if not await family_is_live(session, claims.tenant_id, claims.family_id):
            return None
        return await membership_role(session, claims.user_id)

    role = await database.run(current_role, claims.tenant_id)
    if role is None:
        raise UnauthorizedError(ENDED_SESSION)
    return SessionGrant(claims, role)


def session_subject(user_id: uuid.UUID) -> str:
    """The principal's subject (idempotency keys, logs): distinct from any API key id."""
    return f"user:{user_id}"
