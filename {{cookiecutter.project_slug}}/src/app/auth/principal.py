"""The `CurrentPrincipal` dependency: who is calling, and for which tenant.

Machine clients send `Authorization: Bearer <api key>`. The key is checked through the
`authenticate_api_key` database function, the only way the runtime role can touch the key table.
A successful check is remembered in-process for `KEY_CACHE_SECONDS` (`ApiKeyCache`), so a busy
client does not pay a second transaction per request; failures are never remembered.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from cachetools import TTLCache
from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.api_keys import parse_key
from app.db.session import Database, DatabaseDep
from app.errors import UnauthorizedError


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. `subject` identifies it within the tenant (here: the key id)."""

    tenant_id: uuid.UUID
    subject: str
    kind: str = "api_key"


# How long a verified key is trusted without asking the database again: the longest a revoked
# key keeps working in one process (docs/tenancy.md). The entry cap bounds the memory.
KEY_CACHE_SECONDS = 10.0
KEY_CACHE_ENTRIES = 10_000


class ApiKeyCache:
    """Successful verifications, (key id, secret hash) → tenant, each for `ttl` seconds.

    Keyed by the secret's hash too, so a wrong secret for a cached key id misses and goes to the
    database. Unknown, revoked and wrong keys are never stored: each of them asks the database
    (and counts against the caller's IP rate limit) every time. cachetools' TTLCache does the
    expiry and the least-recently-used bound.

    When an entry expires under load, every request with that key misses at once; `verified`
    lets them share one lookup instead of queueing one transaction each for the pool.
    """

    def __init__(
        self,
        ttl: float = KEY_CACHE_SECONDS,
        max_entries: int = KEY_CACHE_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._entries: TTLCache[tuple[uuid.UUID, bytes], uuid.UUID] = TTLCache(
            maxsize=max_entries, ttl=ttl, timer=clock
        )
        self._lookups: dict[tuple[uuid.UUID, bytes], asyncio.Event] = {}

    def get(self, key_id: uuid.UUID, secret_hash: bytes) -> uuid.UUID | None:
        return self._entries.get((key_id, secret_hash))

    def put(self, key_id: uuid.UUID, secret_hash: bytes, tenant_id: uuid.UUID) -> None:
        self._entries[(key_id, secret_hash)] = tenant_id

    async def verified(
        self,
        key_id: uuid.UUID,
        secret_hash: bytes,
        verify: Callable[[], Awaitable[uuid.UUID | None]],
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
            return tenant if tenant is not None else await verify()
        done = self._lookups[key] = asyncio.Event()
        try:
            tenant = await verify()
            if tenant is not None:
                self.put(key_id, secret_hash, tenant)
            return tenant
        finally:
            del self._lookups[key]
            done.set()


def _bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if header is None:
        raise UnauthorizedError("Send an API key as `Authorization: Bearer <key>`.")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError("The Authorization header must use the Bearer scheme.")
    return token.strip()


async def authenticate(request: Request, database: DatabaseDep) -> Principal:
    """Resolve the bearer API key to its tenant, or answer 401."""
    parsed = parse_key(_bearer_token(request))
    if parsed is None:
        raise UnauthorizedError("The API key is malformed.")
    key_id, secret_hash = parsed
    cache: ApiKeyCache | None = getattr(request.app.state, "api_key_cache", None)

    def verify() -> Awaitable[uuid.UUID | None]:
        return _verify(database, key_id, secret_hash)

    tenant_id = await (cache.verified(key_id, secret_hash, verify) if cache else verify())
    if tenant_id is None:
        raise UnauthorizedError("The API key is unknown or revoked.")
    principal = Principal(tenant_id=tenant_id, subject=str(key_id))
    request.state.principal = principal
    return principal


async def _verify(database: Database, key_id: uuid.UUID, secret_hash: bytes) -> uuid.UUID | None:
    """The key's tenant from `authenticate_api_key`, in a transaction with no tenant set."""

    async def lookup(session: AsyncSession) -> uuid.UUID | None:
        tenant: uuid.UUID | None = await session.scalar(
            text("SELECT authenticate_api_key(:key_id, :secret_hash)"),
            {"key_id": key_id, "secret_hash": secret_hash},
        )
        return tenant

    return await database.run(lookup, tenant_id=None)


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]
