"""The `CurrentPrincipal` dependency: who is calling, and for which tenant.

Either principal is accepted: a machine client's API key (`Authorization: Bearer`) or a browser
session's access cookie (`__Host-access`, app.auth.session_principal). An Authorization header
wins; the cookie is read only without one, so the API key path pays nothing for sessions.
`SessionPrincipal` accepts the session cookie only (the `/api/v1/auth` routes of a signed-in user).

Machine clients send `Authorization: Bearer <api key>`. The key is checked through the
`verify_api_key` database function, the only way the runtime role can touch the key table.
A successful check is remembered in-process for `KEY_CACHE_SECONDS` (`ApiKeyCache`), never past
the key's expiry, so a busy client does not pay a second transaction per request; failures are
never remembered. A revocation notice (`app.auth.key_changes`) evicts a key at once.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from cachetools import TTLCache
from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.api_keys import parse_key
from app.auth.cookie_names import ACCESS_COOKIE
from app.auth.session_principal import session_subject, verify_session
from app.db.session import Database, DatabaseDep
from app.http.errors import UnauthorizedError


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. `subject` identifies it within the tenant (the key id, or
    `user:<id>` for a session). A session also names its user, role, email and family."""

    tenant_id: uuid.UUID
    subject: str
    kind: Literal["api_key", "session"] = "api_key"
    user_id: uuid.UUID | None = None
    role: str | None = None
    email: str | None = None
    family_id: uuid.UUID | None = None


# How long a verified key is trusted without asking the database again: the longest a revoked
# key keeps working in one process when the revocation notice does not arrive (docs/tenancy.md).
# The entry cap bounds the memory.
KEY_CACHE_SECONDS = 10.0
KEY_CACHE_ENTRIES = 10_000


@dataclass(frozen=True)
class KeyGrant:
    """What the database says of a valid key: its tenant, and when it stops (None: never)."""

    tenant_id: uuid.UUID
    expires_at: datetime | None


@dataclass(frozen=True)
class _Entry:
    secret_hash: bytes
    tenant_id: uuid.UUID
    expires_at: float  # wall-clock seconds; infinity for a key that never expires


class ApiKeyCache:
    """Successful verifications, key id → (secret hash, tenant, expiry), each for `ttl` seconds.

    A hit needs the same secret hash too, so a wrong secret for a cached key id misses and goes to
    the database, and it must be before the key's own `expires_at`: an expired key is refused
    from that instant even while cached. Unknown, revoked and wrong keys are never stored: each
    of them asks the database (and counts against the caller's IP rate limit) every time.
    cachetools' TTLCache does the ageing and the least-recently-used bound.

    `evict` forgets a key at once (a revocation notice, `app.auth.key_changes`); an answer the
    database gave before an eviction is not stored after it.

    When an entry expires under load, every request with that key misses at once; `verified`
    lets them share one lookup instead of queueing one transaction each for the pool.
    """

    def __init__(
        self,
        ttl: float = KEY_CACHE_SECONDS,
        max_entries: int = KEY_CACHE_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._entries: TTLCache[uuid.UUID, _Entry] = TTLCache(
            maxsize=max_entries, ttl=ttl, timer=clock
        )
        self._wall_clock = wall_clock
        self._lookups: dict[tuple[uuid.UUID, bytes], asyncio.Event] = {}
        self._evictions = 0

    def get(self, key_id: uuid.UUID, secret_hash: bytes) -> uuid.UUID | None:
        entry = self._entries.get(key_id)
        if entry is None or not hmac.compare_digest(entry.secret_hash, secret_hash):
            return None
        if self._wall_clock() >= entry.expires_at:
            return None
        return entry.tenant_id

    def put(self, key_id: uuid.UUID, secret_hash: bytes, grant: KeyGrant) -> None:
        until = grant.expires_at.timestamp() if grant.expires_at is not None else math.inf
        self._entries[key_id] = _Entry(secret_hash, grant.tenant_id, until)

    def evict(self, key_id: uuid.UUID) -> None:
        """Forget `key_id` now, and keep lookups already under way from storing it again."""
        self._evictions += 1
        self._entries.pop(key_id, None)

    def clear(self) -> None:
        """Forget every key (after notices may have been missed)."""
        self._evictions += 1
        self._entries.clear()

    async def verified(
        self,
        key_id: uuid.UUID,
        secret_hash: bytes,
        verify: Callable[[], Awaitable[KeyGrant | None]],
    ) -> uuid.UUID | None:
        """The cached tenant, else `verify()`'s; concurrent misses of one key share one call.

        Only a success is shared: when the shared call finds no key or fails, each waiter calls
        `verify()` itself, so refused keys still reach the database every time.
        """
        tenant = self.get(key_id, secret_hash)
        if tenant is not None:
            return tenant
        key = (key_id, secret_hash)
        running = self._lookups.get(key)
        if running is not None:
            await running.wait()
            tenant = self.get(key_id, secret_hash)
            return tenant if tenant is not None else await self._verify_alone(verify)
        done = self._lookups[key] = asyncio.Event()
        try:
            evictions = self._evictions
            grant = await verify()
            if grant is None:
                return None
            if evictions == self._evictions:
                self.put(key_id, secret_hash, grant)
            return grant.tenant_id
        finally:
            del self._lookups[key]
            done.set()

    @staticmethod
    async def _verify_alone(verify: Callable[[], Awaitable[KeyGrant | None]]) -> uuid.UUID | None:
        grant = await verify()
        return grant.tenant_id if grant is not None else None


def _bearer_token(header: str | None) -> str:
    if header is None:
        raise UnauthorizedError(
            "Send an API key as `Authorization: Bearer <key>`, or sign in for a session cookie."
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError("The Authorization header must use the Bearer scheme.")
    return token.strip()


async def authenticate(request: Request) -> Principal:
    """Resolve the bearer API key (or, without one, the session cookie) to its tenant, or 401.

    The database comes from the app's state, not from a `DatabaseDep` sub-dependency: this runs
    on every authenticated request, and each dependency level costs FastAPI a resolution pass.
    """
    database: Database = request.app.state.database
    header = request.headers.get("authorization")
    if header is None:
        access = request.cookies.get(ACCESS_COOKIE)
        if access is not None:
            return await _session_principal(request, database, access)
    parsed = parse_key(_bearer_token(header))
    if parsed is None:
        raise UnauthorizedError("The API key is malformed.")
    key_id, secret_hash = parsed
    cache: ApiKeyCache | None = getattr(request.app.state, "api_key_cache", None)

    def verify() -> Awaitable[KeyGrant | None]:
        return _verify(database, key_id, secret_hash)

    if cache is not None:
        tenant_id = await cache.verified(key_id, secret_hash, verify)
    else:
        grant = await verify()
        tenant_id = grant.tenant_id if grant is not None else None
    if tenant_id is None:
        raise UnauthorizedError("The API key is unknown, revoked or expired.")
    principal = Principal(tenant_id=tenant_id, subject=str(key_id))
    request.state.principal = principal
    return principal


# Built once: constructing a `text()` parses its bind parameters on every call.
_VERIFY = text("SELECT tenant_id, expires_at FROM verify_api_key(:key_id, :secret_hash)")


async def _verify(database: Database, key_id: uuid.UUID, secret_hash: bytes) -> KeyGrant | None:
    """The key's tenant and expiry from `verify_api_key`, in a transaction with no tenant set."""

    async def lookup(session: AsyncSession) -> KeyGrant | None:
        row = (
            await session.execute(_VERIFY, {"key_id": key_id, "secret_hash": secret_hash})
        ).first()
        return KeyGrant(row.tenant_id, row.expires_at) if row is not None else None

    return await database.run(lookup, tenant_id=None)


async def authenticate_session(request: Request, database: DatabaseDep) -> Principal:
    """The signed-in user of the session cookie, or 401 (API keys are not accepted here)."""
    access = request.cookies.get(ACCESS_COOKIE)
    if access is None:
        raise UnauthorizedError("Sign in first: this route needs the session cookie.")
    return await _session_principal(request, database, access)


async def _session_principal(request: Request, database: Database, token: str) -> Principal:
    grant = await verify_session(database, request.app.state.settings.signing_keys, token)
    claims = grant.claims
    principal = Principal(
        tenant_id=claims.tenant_id,
        subject=session_subject(claims.user_id),
        kind="session",
        user_id=claims.user_id,
        role=grant.role,
        email=claims.email,
        family_id=claims.family_id,
    )
    request.state.principal = principal
    return principal


# Either principal: an API key or the session cookie (notes, webhooks, every /api/ route).
CurrentPrincipal = Annotated[Principal, Depends(authenticate)]
# The session cookie only: routes that act on the signed-in user (app.auth.router).
SessionPrincipal = Annotated[Principal, Depends(authenticate_session)]
