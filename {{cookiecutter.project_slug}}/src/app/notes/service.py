"""Notes use cases. Raises domain errors; never builds HTTP responses, never commits."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.cache.tenant_cache import CachePolicy, TenantCache
from app.db.session import Database
from app.errors import NotFoundError, PreconditionFailedError
from app.etags import check_if_match
from app.notes import repository
from app.notes.models import Note
from app.notes.schemas import (
    NoteCreate,
    NoteListQuery,
    NoteOut,
    NotePage,
    NoteStats,
    NoteUpdate,
)
from app.notes.tasks import COUNT_WORDS
from app.pagination import decode_cursor, encode_cursor
from app.webhooks.events import queue_event
from app.worker.outbox import enqueue

NOT_FOUND = "No note with this id exists."
# Counting a tenant's notes scans its index; the answer changes only when a note is created or
# deleted, and both invalidate it. The TTL bounds staleness if an invalidation is lost.
STATS_CACHE = CachePolicy(namespace="notes-stats", ttl_seconds=300)
STATS_KEY = "stats"


@dataclass(frozen=True)
class NotesService:
    database: Database
    cursor_secret: bytes
    # Wakes the outbox relay once a transaction that queued tasks has committed.
    after_commit: Callable[[], None] = lambda: None
    stats_cache: TenantCache | None = None

    async def create_in(
        self, session: AsyncSession, principal: Principal, data: NoteCreate
    ) -> Note:
        """Create a note inside the caller's transaction (the idempotent POST owns it), and
        queue its word count in the same transaction."""
        note = await repository.insert(session, principal.tenant_id, data.title, data.body)
        await enqueue(session, principal.tenant_id, COUNT_WORDS, str(note.id))
        await queue_event(
            session,
            principal.tenant_id,
            "note.created",
            NoteOut.model_validate(note).model_dump(mode="json"),
        )
        return note

    async def get(self, principal: Principal, note_id: uuid.UUID) -> Note:
        async def work(session: AsyncSession) -> Note | None:
            return await repository.get(session, principal.tenant_id, note_id)

        note = await self.database.run(work, principal.tenant_id)
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
            updated = await repository.update_note(
                session, principal.tenant_id, note_id, changes, current.version
            )
            if updated is None:  # another writer got in between our read and our write
                raise PreconditionFailedError("The note changed meanwhile; fetch it and retry.")
            if "body" in changes:
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


async def get_notes_service(request: Request) -> NotesService:
    # `async def`: a plain `def` dependency would hop to the thread pool on every request.
    secret = request.app.state.settings.secret_key.get_secret_value().encode()
    relay = request.app.state.outbox_relay
    wake = relay.wake.set if relay is not None else (lambda: None)
    return NotesService(
        request.app.state.database,
        secret,
        after_commit=wake,
        stats_cache=request.app.state.notes_stats_cache,
    )


NotesServiceDep = Annotated[NotesService, Depends(get_notes_service)]
