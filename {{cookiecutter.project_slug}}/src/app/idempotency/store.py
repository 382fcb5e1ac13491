"""Running a unit of work at most once per idempotency key, in the request's own transaction.

Inside one transaction: take a transaction-scoped advisory lock on the key (not free → another
request with this key is in flight → 409); look up a completed record (same fingerprint → replay it,
different → 422); otherwise run the work and insert the record before the commit. The record and
the work's writes commit together or not at all, so a crash never leaves a side effect without its
record, and a failed request leaves no key behind: its retry simply runs again.

A replayed creation must not hand out a resource that no longer exists: a route passes
`revive`, asked in the replay's transaction, and a resource deleted since gets a 409. An answer
holding a secret (a webhook endpoint's) is kept without it (`kept_body`), and the route's `revive`
puts it back from where it is kept sealed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any, cast

from fastapi import Depends, Request
from sqlalchemy import Interval, Table, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from app.auth.principal import Principal
from app.db.session import Database
from app.http.errors import ConflictError, UnprocessableError
from app.idempotency.keys import IdempotentRequest
from app.idempotency.models import IdempotencyRecord
from app.observability.metrics import IDEMPOTENCY_OUTCOMES

REPLAYED_HEADER = "Idempotent-Replayed"
# Response headers worth replaying; per-request ones (X-Request-ID, dates) are not stored.
STORED_HEADERS = ("location", "etag", "content-type", "cache-control")


class IdempotencyInFlightError(ConflictError):
    slug = "idempotency-key-in-flight"
    title = "A request with this Idempotency-Key is still in progress"

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


class IdempotencyKeyReusedError(UnprocessableError):
    slug = "idempotency-key-reused"
    title = "Idempotency-Key reused with a different request"


class IdempotentResourceDeletedError(ConflictError):
    slug = "idempotency-key-resource-deleted"
    title = "The resource created with this Idempotency-Key has been deleted"


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    replayed: bool = False
    # What the record keeps, when that is less than the answer (no secret in the record).
    kept_body: bytes | None = None

    def to_response(self) -> Response:
        headers = dict(self.headers)
        if self.replayed:
            headers[REPLAYED_HEADER] = "true"
        return Response(self.body, status_code=self.status_code, headers=headers)


# A stored creation answer as it is to be replayed (whole again, if the record kept less), or
# None when the resource it names has been deleted since. Asked in the replay's transaction, so
# under the tenant's row-level security like the work itself.
Revive = Callable[[AsyncConnection, "StoredResponse"], Awaitable["StoredResponse | None"]]


# Statements of every idempotent POST, built once with bind parameters: built per request, they
# cost their construction and cache key each time (docs/performance.md). Core statements on the
# table: the unit of work runs on the transaction's bare connection (`Database.run_core`), since
# an ORM session around it cost the POST more than the work it guards.
_TABLE = cast("Table", IdempotencyRecord.__table__)
_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtextextended(:name, 0))")
_COMPLETED = select(
    _TABLE.c.fingerprint, _TABLE.c.status_code, _TABLE.c.headers, _TABLE.c.body
).where(
    _TABLE.c.tenant_id == bindparam("tenant_id"),
    _TABLE.c.principal == bindparam("principal"),
    _TABLE.c.key == bindparam("key"),
    _TABLE.c.created_at > func.now() - bindparam("retention", type_=Interval()),
)
_RECORD_COLUMNS = ("tenant_id", "principal", "key", "fingerprint", "status_code", "headers", "body")
_NEW_RECORD = insert(_TABLE)
# Only an expired record (outside the retention window, not yet purged) can be there already.
_RECORD = _NEW_RECORD.on_conflict_do_update(
    index_elements=["tenant_id", "principal", "key"],
    set_={
        **{name: _NEW_RECORD.excluded[name] for name in _RECORD_COLUMNS},
        "created_at": func.now(),
    },
)


async def _lock(session: AsyncConnection, principal: Principal, key: str) -> bool:
    lock_name = f"{principal.tenant_id}:{principal.subject}:{key}"
    acquired: bool = await session.scalar(_LOCK, {"name": lock_name})
    return acquired


async def _completed(
    session: AsyncConnection, principal: Principal, key: str, retention: timedelta
) -> tuple[bytes, StoredResponse] | None:
    """The completed record of this key, if any: its request's fingerprint and its answer."""
    values = {
        "tenant_id": principal.tenant_id,
        "principal": principal.subject,
        "key": key,
        "retention": retention,
    }
    row = (await session.execute(_COMPLETED, values)).first()
    if row is None:
        return None
    answer = StoredResponse(row.status_code, row.body, dict(row.headers), replayed=True)
    return row.fingerprint, answer


async def _record(
    session: AsyncConnection,
    principal: Principal,
    request: IdempotentRequest,
    result: StoredResponse,
) -> None:
    values = {
        "tenant_id": principal.tenant_id,
        "principal": principal.subject,
        "key": request.key,
        "fingerprint": request.fingerprint,
        "status_code": result.status_code,
        "headers": {k: v for k, v in result.headers.items() if k.lower() in STORED_HEADERS},
        "body": result.body if result.kept_body is None else result.kept_body,
    }
    await session.execute(_RECORD, values)


async def _replay(
    session: AsyncConnection,
    previous: tuple[bytes, StoredResponse],
    request: IdempotentRequest,
    revive: Revive | None,
) -> StoredResponse:
    """The stored response for a retry of the same request, if what it created is still there."""
    fingerprint, stored = previous
    if fingerprint != request.fingerprint:
        raise IdempotencyKeyReusedError(
            "This key was used for a different request; use a new key for new requests."
        )
    if revive is None:
        return stored
    revived = await revive(session, stored)
    if revived is None:
        raise IdempotentResourceDeletedError(
            "The request with this key created a resource that has been deleted since; "
            "use a new key to create another."
        )
    return revived


async def run_once(
    database: Database,
    principal: Principal,
    request: IdempotentRequest,
    retention: timedelta,
    work: Callable[[AsyncConnection], Awaitable[StoredResponse]],
    revive: Revive | None = None,
) -> StoredResponse:
    """`work`'s response, or the stored response of an earlier run with the same key."""

    async def guarded(session: AsyncConnection) -> StoredResponse:
        if not await _lock(session, principal, request.key):
            raise IdempotencyInFlightError("Retry after the first request has finished.")
        previous = await _completed(session, principal, request.key, retention)
        if previous is not None:
            return await _replay(session, previous, request, revive)
        result = await work(session)
        await _record(session, principal, request, result)
        return result

    # Counted once the transaction is over: `guarded` may run more than once (DATA-TX retries).
    try:
        result = await database.run_core(guarded, principal.tenant_id)
    except IdempotencyInFlightError:
        IDEMPOTENCY_OUTCOMES.labels("in_flight").inc()
        raise
    except IdempotencyKeyReusedError:
        IDEMPOTENCY_OUTCOMES.labels("key_reused").inc()
        raise
    except IdempotentResourceDeletedError:
        IDEMPOTENCY_OUTCOMES.labels("resource_deleted").inc()
        raise
    IDEMPOTENCY_OUTCOMES.labels("replayed" if result.replayed else "new").inc()
    return result


def created_id(stored: StoredResponse) -> uuid.UUID:
    """The `id` of the resource a stored creation answer (a JSON object) carries."""
    body: dict[str, Any] = json.loads(stored.body)
    return uuid.UUID(str(body["id"]))


def json_response(
    status_code: int, body: bytes, headers: dict[str, str], kept_body: bytes | None = None
) -> StoredResponse:
    """A `StoredResponse` for a JSON body already serialised by its response model."""
    headers = {"content-type": "application/json", **headers}
    return StoredResponse(status_code, body, headers, kept_body=kept_body)


@dataclass(frozen=True)
class Idempotency:
    """`run_once` bound to the app's database and retention window."""

    database: Database
    retention: timedelta

    async def run(
        self,
        principal: Principal,
        request: IdempotentRequest,
        work: Callable[[AsyncConnection], Awaitable[StoredResponse]],
        revive: Revive | None = None,
    ) -> Response:
        """`revive`: for a route that creates a resource, the replayed answer if the resource it
        names is still there, else None (409 `idempotency-key-resource-deleted`)."""
        result = await run_once(self.database, principal, request, self.retention, work, revive)
        return result.to_response()


async def get_idempotency(request: Request) -> Idempotency:
    # `async def` though it awaits nothing: a plain `def` dependency runs in FastAPI's thread
    # pool, a thread hand-off per POST for two attribute reads (docs/performance.md).
    hours = request.app.state.settings.idempotency_retention_hours
    return Idempotency(request.app.state.database, timedelta(hours=hours))


IdempotencyDep = Annotated[Idempotency, Depends(get_idempotency)]
