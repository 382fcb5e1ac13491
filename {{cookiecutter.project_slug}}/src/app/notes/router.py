"""HTTP routes of the notes feature. Each route states its own caching (API-CACHING)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncConnection

from app.auth.principal import CurrentPrincipal
from app.cache.tenant_cache import TenantCache
from app.http.api_contract import operation_link, retry_link
from app.http.etags import IF_MATCH_PATTERN, REVALIDATES, etag_for
from app.http.locations import location_for
from app.http.routes import mount_router
from app.idempotency.keys import IdempotencyKeyDep, idempotent_post_responses
from app.idempotency.store import IdempotencyDep, StoredResponse, created_id, json_response
from app.notes.schemas import NoteCreate, NoteListQuery, NoteOut, NotePage, NoteStats, NoteUpdate
from app.notes.service import STATS_CACHE, notes_service
from app.settings import Settings

JSON_MEDIA_TYPE = "application/json"

router = APIRouter(prefix="/api/v1/notes", tags=["notes"])

# A single note may be cached privately but must be revalidated (cheap: ETag → 304).
REVALIDATE = "private, no-cache"
IF_MATCH = (
    "Change only this version: the `ETag` of the note as you read it, `*`, or a list of entity "
    "tags. A stale one gets 412 and changes nothing; one outside this syntax, 422."
)
IfMatch = Annotated[
    str | None, Header(max_length=512, pattern=IF_MATCH_PATTERN, description=IF_MATCH)
]
NOTE_PATH = "/api/v1/notes/{note_id}"


# OpenAPI links from an answer carrying a note to reading, changing and deleting it.
_NOTE_ID = {"path.note_id": "$response.body#/id"}
_THIS_VERSION = {**_NOTE_ID, "header.if-match": "$response.header.ETag"}
NOTE_LINKS: dict[str, Any] = {
    "GetNote": operation_link(NOTE_PATH, "get", "Read the note", _NOTE_ID),
    "UpdateNote": operation_link(NOTE_PATH, "patch", "Change this version", _THIS_VERSION),
    "DeleteNote": operation_link(NOTE_PATH, "delete", "Delete this version", _THIS_VERSION),
}
CREATE_LINKS = {**NOTE_LINKS, "Retry": retry_link("/api/v1/notes")}


def _note_headers(note: NoteOut) -> dict[str, str]:
    return {"ETag": etag_for(note.version), "Cache-Control": REVALIDATE}


def _note_response(note: NoteOut, status_code: int = status.HTTP_200_OK) -> Response:
    """The note serialised once, by pydantic, straight to JSON bytes.

    `response_model=NoteOut` on the route still documents the body; returning a `Response`
    skips FastAPI's second pass over a model the service has already validated (validate
    again, dump to Python objects, then encode those with the standard library's json).
    """
    return Response(
        note.model_dump_json(), status_code, _note_headers(note), media_type=JSON_MEDIA_TYPE
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=NoteOut,
    responses={
        **idempotent_post_responses("Invalid body"),
        201: {"description": "Created", "links": CREATE_LINKS},
    },
)
async def create_note(
    payload: NoteCreate,
    principal: CurrentPrincipal,
    idempotent_request: IdempotencyKeyDep,
    idempotency: IdempotencyDep,
    request: Request,
) -> Response:
    """Create a note. Requires `Idempotency-Key`; a retry with the same key replays the answer."""
    notes = notes_service(request)

    async def work(session: AsyncConnection) -> StoredResponse:
        note = await notes.create_in(session, principal, payload)
        headers = {
            "Location": location_for(request, "get_note", note_id=note.id),
            **_note_headers(note),
        }
        return json_response(status.HTTP_201_CREATED, note.model_dump_json().encode(), headers)

    async def revive(session: AsyncConnection, stored: StoredResponse) -> StoredResponse | None:
        return stored if await notes.exists_in(session, principal, created_id(stored)) else None

    response = await idempotency.run(principal, idempotent_request, work, revive)
    notes.after_commit()
    if response.status_code == status.HTTP_201_CREATED:
        await notes.notes_changed(principal.tenant_id)
    return response


@router.get("", response_model=NotePage)
async def list_notes(
    query: Annotated[NoteListQuery, Query()], principal: CurrentPrincipal, request: Request
) -> NotePage:
    """A page of notes, newest first by default. Lists are not cached (`no-store`)."""
    return await notes_service(request).list(principal, query)


# Its own path, outside /api/v1/notes/{note_id}: "stats" is not a note id, for any method.
stats_router = APIRouter(prefix="/api/v1/stats", tags=["notes"])


@stats_router.get("/notes", response_model=NoteStats)
async def note_stats(principal: CurrentPrincipal, request: Request) -> NoteStats:
    """How many notes the tenant has: computed once and cached in Redis for every replica until
    a note is created or deleted (docs/caching.md). The HTTP answer itself is `no-store`."""
    return await notes_service(request).stats(principal)


@router.get(
    "/{note_id}",
    response_model=NoteOut,
    responses={
        200: {"description": "The note", "links": NOTE_LINKS},
        304: {"description": "Not modified"},
    },
    openapi_extra=REVALIDATES,
)
async def get_note(note_id: uuid.UUID, principal: CurrentPrincipal, request: Request) -> Response:
    """The note with its `ETag`: send it back in `If-None-Match` for a 304 while it is current."""
    return _note_response(await notes_service(request).get(principal, note_id))


@router.patch(
    "/{note_id}",
    response_model=NoteOut,
    responses={
        200: {"description": "The note as changed", "links": NOTE_LINKS},
        412: {"description": "`If-Match` names another version; nothing changed"},
    },
)
async def update_note(
    note_id: uuid.UUID,
    payload: NoteUpdate,
    principal: CurrentPrincipal,
    request: Request,
    if_match: IfMatch = None,
) -> Response:
    """Change title and/or body. With `If-Match`, a stale version gets 412."""
    note = await notes_service(request).update(principal, note_id, payload, if_match)
    return _note_response(NoteOut.model_validate(note))


@router.delete(
    "/{note_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={412: {"description": "`If-Match` names another version; nothing deleted"}},
)
async def delete_note(
    note_id: uuid.UUID,
    principal: CurrentPrincipal,
    request: Request,
    if_match: IfMatch = None,
) -> Response:
    """Soft delete: the note disappears from the API now and is purged after retention."""
    await notes_service(request).delete(principal, note_id, if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def install_notes(app: FastAPI, settings: Settings) -> None:
    """Mount the notes routes; the stats route caches per tenant in Redis (no cache without it)."""
    redis = app.state.redis
    app.state.notes_stats_cache = (
        TenantCache(redis, settings.key_prefix, STATS_CACHE) if redis is not None else None
    )
    mount_router(app, router)
    mount_router(app, stats_router)
