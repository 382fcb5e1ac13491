"""Notes use cases. Raises domain errors; never builds HTTP responses, never commits."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.auth.principal import Principal
from app.cache.tenant_cache import CachePolicy, TenantCache
from app.db.session import Database
from app.http.errors import NotFoundError, PreconditionFailedError, UnprocessableError
from app.http.etags import check_if_match
from app.http.pagination import decode_cursor, encode_cursor
from app.notes import repository
from app.notes.html_policy import sanitize_html
from app.notes.models import Note
from app.notes.schemas import (
    BODY_MAX_CHARS,
    NoteCreate,
    NoteListQuery,
    NoteOut,
    NotePage,
    NoteStats,
    NoteUpdate,
)
from app.notes.tasks import COUNT_WORDS
from app.webhooks.events import queue_event
from app.worker.outbox import enqueue

NOT_FOUND = "No note with this id exists."
# Counting a tenant's notes scans its index; the answer changes only when a note is created or
# deleted, and both invalidate it. The TTL bounds staleness if an invalidation is lost.
STATS_CACHE = CachePolicy(namespace="notes-stats", ttl_seconds=300)
STATS_KEY = "stats"


def stored_body(body: str, note_format: str) -> str:
    """The body as it is stored: HTML through the allow-list (`html_policy`), text as sent."""
    if note_format != "html":
        return body
    clean = sanitize_html(body)
    if len(clean) > BODY_MAX_CHARS:
        raise UnprocessableError(
            f"body: the sanitized HTML is {len(clean)} characters, over the limit of "
            f"{BODY_MAX_CHARS} (sanitizing escapes `<` and `&`, which lengthens it)."
        )
    return clean


def _sanitized_changes(changes: dict[str, Any], current: Note) -> dict[str, Any]:
    """A PATCH that sends a body, or switches the note to HTML, stores a sanitized body."""
    note_format = changes.get("format", current.format)
    if note_format == "html" and ("body" in changes or "format" in changes):
        return {**changes, "body": stored_body(changes.get("body", current.body), note_format)}
    return changes


@dataclass(frozen=True)
class NotesService:
    database: Database
    cursor_secret: bytes
    # Wakes the outbox relay once a transaction that queued tasks has committed.
    after_commit: Callable[[], None] = lambda: None
    stats_cache: TenantCache | None = None

    async def create_in(
        self, session: AsyncConnection, principal: Principal, data: NoteCreate
    ) -> NoteOut:
        """Create a note inside the caller's transaction (the idempotent POST owns it), and
        queue its word count in the same transaction."""
        body = stored_body(data.body, data.format)
        created = await repository.insert(
            session, principal.tenant_id, data.title, body, data.format
        )
        await enqueue(session, principal.tenant_id, COUNT_WORDS, str(created.id))
        await queue_event(
            session, principal.tenant_id, "note.created", created.model_dump(mode="json")
        )
        return created

    async def exists_in(
        self, session: AsyncConnection, principal: Principal, note_id: uuid.UUID
    ) -> bool:
        """Whether the note is live, in the caller's transaction (a replayed create asks)."""
        return await repository.read(session, principal.tenant_id, note_id) is not None

    async def get(self, principal: Principal, note_id: uuid.UUID) -> NoteOut:
        async def work(connection: AsyncConnection) -> NoteOut | None:
            return await repository.read(connection, principal.tenant_id, note_id)

        note = await self.database.run_core(work, principal.tenant_id)
        if note is None:
            raise NotFoundError(NOT_FOUND)
        return note

    async def stats(self, principal: Principal) -> NoteStats:
        async def count() -> dict[str, object]:
            async def work(session: AsyncSession) -> tuple[int, datetime | None]:
                return await repository.stats(session, principal.tenant_id)

            notes, newest = await self.database.run(work, principal.tenant_id)
            return NoteStats(notes=notes, newest_created_at=newest).model_dump(mode="json")

        if self.stats_cache is None:
            return NoteStats.model_validate(await count())
        cached = await self.stats_cache.get_or_compute(principal.tenant_id, STATS_KEY, count)
        return NoteStats.model_validate(cached)

    async def notes_changed(self, tenant_id: uuid.UUID) -> None:
        """Called after a create or delete has committed: never before, or a reader could cache
        the old answer again between the invalidation and the commit."""
        if self.stats_cache is not None:
            await self.stats_cache.invalidate(tenant_id, STATS_KEY)

    async def list(self, principal: Principal, query: NoteListQuery) -> NotePage:
        scope = f"{principal.tenant_id}|{query.scope()}"
        after = None
        if query.cursor is not None:
            position = decode_cursor(query.cursor, self.cursor_secret, scope)
            after = (datetime.fromisoformat(position["c"]), uuid.UUID(position["i"]))

        async def work(session: AsyncSession) -> list[Note]:
            return await repository.list_page(session, principal.tenant_id, query, after)

        rows = await self.database.run(work, principal.tenant_id)
        items, more = rows[: query.limit], len(rows) > query.limit
        next_cursor = None
        if more:
            last = items[-1]
            position = {"c": last.created_at.isoformat(), "i": str(last.id)}
            next_cursor = encode_cursor(position, self.cursor_secret, scope)
        return NotePage(items=[NoteOut.model_validate(n) for n in items], next_cursor=next_cursor)

    async def update(
        self, principal: Principal, note_id: uuid.UUID, data: NoteUpdate, if_match: str | None
    ) -> Note:
        changes = data.model_dump(exclude_unset=True)

        async def work(session: AsyncSession) -> Note:
            current = await repository.get(session, principal.tenant_id, note_id)
            if current is None:
                raise NotFoundError(NOT_FOUND)
            check_if_match(if_match, current.version)
            stored = _sanitized_changes(changes, current)
            updated = await repository.update_note(
                session, principal.tenant_id, note_id, stored, current.version
            )
            if updated is None:  # another writer got in between our read and our write
                raise PreconditionFailedError("The note changed meanwhile; fetch it and retry.")
            if "body" in stored:
                await enqueue(session, principal.tenant_id, COUNT_WORDS, str(note_id))
            return updated

        updated = await self.database.run(work, principal.tenant_id)
        self.after_commit()
        return updated

    async def delete(self, principal: Principal, note_id: uuid.UUID, if_match: str | None) -> None:
        async def work(session: AsyncSession) -> None:
            current = await repository.get(session, principal.tenant_id, note_id)
            if current is None:
                raise NotFoundError(NOT_FOUND)
            check_if_match(if_match, current.version)
            deleted = await repository.soft_delete(
                session, principal.tenant_id, note_id, current.version
            )
            if not deleted:  # another writer got in between our read and our write
                raise PreconditionFailedError("The note changed meanwhile; fetch it and retry.")

        await self.database.run(work, principal.tenant_id)
        await self.notes_changed(principal.tenant_id)


def notes_service(request: Request) -> NotesService:
    """The app's one `NotesService`, made at its first request (the lifespan has run by then).

    A plain call in each route, not a `Depends`: FastAPI resolves a dependency on every request
    (about 3 % of a read's instructions, docs/performance.md), and the service holds only what
    lives as long as the app, so there is nothing per request to inject.
    """
    state = request.app.state
    service: NotesService | None = getattr(state, "notes_service", None)
    if service is None or service.database is not state.database:
        relay = state.outbox_relay
        service = state.notes_service = NotesService(
            state.database,
            state.settings.secret_key.get_secret_value().encode(),
            after_commit=relay.wake.set if relay is not None else (lambda: None),
            stats_cache=state.notes_stats_cache,
        )
    return service
