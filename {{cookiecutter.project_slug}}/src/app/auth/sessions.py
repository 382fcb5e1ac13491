"""Browser sessions: start one at login, rotate its refresh token, end one or all of them.

A login starts a *family*: one device, one chain of refresh tokens. Each refresh marks the
presented token used and issues the next (RFC 9700 section 4.14.2). A used token presented again
after `REFRESH_REUSE_GRACE_SECONDS` means two parties hold the chain: the whole family is revoked
(the newest token dies too) and `refresh_token_reused` is logged as a security event. Within the
window (two tabs refreshing at once) the second request gets a sibling token instead.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.session_settings import SessionSettings
from app.auth.session_store import (
    PresentedRefresh,
    add_refresh_token,
    load_refresh,
    mark_used,
    revoke_family,
    revoke_user_sessions,
    start_family,
)
from app.auth.tokens import (
    AccessClaims,
    IssuedRefresh,
    device_hash,
    issue_access_token,
    new_device_id,
    new_refresh_token,
    parse_refresh_token,
    token_hash,
)
from app.db.session import Database
from app.http.errors import UnauthorizedError
from app.observability.logging import get_logger
from app.tenants.users import LoginGrant, membership_role

log = get_logger("app.auth.sessions")
REFUSED = "The session is not valid any more; sign in again."


@dataclass(frozen=True)
class IssuedSession:
    """Cookie values to set. `device_id` is None when the device cookie stays as it is."""

    claims: AccessClaims
    access_token: str
    refresh_token: str
    device_id: str | None


@dataclass(frozen=True)
class _Refused:
    reason: str
    presented: PresentedRefresh | None = None


# Built once: constructing a `text()` parses its bind parameters on every call.
_USER_EMAIL = text("SELECT email FROM users WHERE id = :user_id")


class SessionService:
    def __init__(self, database: Database, settings: SessionSettings) -> None:
        self.database = database
        self.settings = settings

    @property
    def access_lifetime(self) -> timedelta:
        return timedelta(minutes=self.settings.access_token_minutes)

    @property
    def refresh_lifetime(self) -> timedelta:
        return timedelta(days=self.settings.refresh_token_days)

    def _issue(self, claims: AccessClaims, refresh: str, device: str | None) -> IssuedSession:
        access = issue_access_token(self.settings.signing_keys, claims, self.access_lifetime)
        return IssuedSession(claims, access, refresh, device)

    async def start(self, grant: LoginGrant) -> IssuedSession:
        """A new family for a successful login, bound to a new device id."""
        device = new_device_id()
        refresh = new_refresh_token(grant.tenant_id)
        expires = datetime.now(UTC) + self.refresh_lifetime

        async def work(session: AsyncSession) -> uuid.UUID:
            family = await start_family(session, grant.tenant_id, grant.user_id, token_hash(device))
            await add_refresh_token(session, grant.tenant_id, family, refresh.secret_hash, expires)
            return family

        family_id = await self.database.run(work, grant.tenant_id)
        claims = AccessClaims(grant.user_id, grant.email, grant.tenant_id, family_id, grant.role)
        log.info("session_started", user_id=str(grant.user_id), tenant_id=str(grant.tenant_id))
        return self._issue(claims, refresh.cookie_value, device)

    async def rotate(self, refresh_value: str | None, device_value: str | None) -> IssuedSession:
        """The next access and refresh tokens of the family, or a 401 (after any revocation
        it decided has committed)."""
        parsed = parse_refresh_token(refresh_value) if refresh_value is not None else None
        if parsed is None:
            raise UnauthorizedError("Send the refresh cookie set at sign-in.")
        tenant_id, presented_hash = parsed
        device = device_hash(device_value)
        following = new_refresh_token(tenant_id)

        async def work(session: AsyncSession) -> AccessClaims | _Refused:
            return await self._rotate_in(session, tenant_id, presented_hash, device, following)

        outcome = await self.database.run(work, tenant_id)
        if isinstance(outcome, _Refused):
            self._log_refusal(tenant_id, outcome)
            raise UnauthorizedError(REFUSED)
        return self._issue(outcome, following.cookie_value, None)

    async def _rotate_in(
        self,
        session: AsyncSession,
        tenant_id: uuid.UUID,
        presented_hash: bytes,
        device: bytes | None,
        following: IssuedRefresh,
    ) -> AccessClaims | _Refused:
        presented = await load_refresh(session, tenant_id, presented_hash)
        if presented is None:
            return _Refused("unknown")
        if presented.family_revoked:
            return _Refused("revoked", presented)
        if presented.used_at is not None and not self._within_grace(presented):
            await revoke_family(session, tenant_id, presented.family_id, "refresh_reuse")
            return _Refused("reused", presented)
        if device is None or not hmac.compare_digest(device, presented.device_hash):
            return _Refused("wrong_device", presented)
        if presented.expires_at <= presented.now:
            return _Refused("expired", presented)
        role = await membership_role(session, presented.user_id)
        if role is None:
            await revoke_family(session, tenant_id, presented.family_id, "membership_removed")
            return _Refused("not_a_member", presented)
        await mark_used(session, tenant_id, presented_hash)
        expires = presented.now + self.refresh_lifetime
        await add_refresh_token(
            session, tenant_id, presented.family_id, following.secret_hash, expires
        )
        email = (await session.execute(_USER_EMAIL, {"user_id": presented.user_id})).scalar_one()
        return AccessClaims(presented.user_id, email, tenant_id, presented.family_id, role)

    def _within_grace(self, presented: PresentedRefresh) -> bool:
        assert presented.used_at is not None  # noqa: S101 - only asked of used tokens
        grace = timedelta(seconds=self.settings.refresh_reuse_grace_seconds)
        return presented.now - presented.used_at <= grace

    @staticmethod
    def _log_refusal(tenant_id: uuid.UUID, refused: _Refused) -> None:
        fields = {"tenant_id": str(tenant_id), "reason": refused.reason}
        if refused.presented is not None:
            fields["user_id"] = str(refused.presented.user_id)
            fields["family_id"] = str(refused.presented.family_id)
        if refused.reason == "reused":
            # A security event: two parties held one refresh chain. The family is revoked.
            log.warning("refresh_token_reused", security_event=True, **fields)
        else:
            log.info("refresh_refused", **fields)

    async def end(
        self, refresh_value: str | None, family: tuple[uuid.UUID, uuid.UUID] | None
    ) -> None:
        """Logout: revoke the family of the refresh cookie, else of the access token."""
        parsed = parse_refresh_token(refresh_value) if refresh_value is not None else None
        if parsed is not None:
            tenant_id, presented_hash = parsed

            async def by_token(session: AsyncSession) -> None:
                presented = await load_refresh(session, tenant_id, presented_hash)
                if presented is not None:
                    await revoke_family(session, tenant_id, presented.family_id, "logout")

            await self.database.run(by_token, tenant_id)
        if family is not None:
            tenant_id, family_id = family

            async def by_family(session: AsyncSession) -> None:
                await revoke_family(session, tenant_id, family_id, "logout")

            await self.database.run(by_family, tenant_id)

    async def end_all(self, user_id: uuid.UUID, reason: str) -> int:
        """Revoke every family of the user, in every tenant (logout-all, password change)."""

        async def work(session: AsyncSession) -> int:
            return await revoke_user_sessions(session, user_id, reason)

        revoked = await self.database.run(work, tenant_id=None)
        log.info("sessions_revoked", user_id=str(user_id), reason=reason, families=revoked)
        return revoked
