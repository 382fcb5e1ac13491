"""SQL for notes. Every query names the tenant explicitly, on top of row-level security:
two independent checks, so one bug cannot expose another tenant's rows."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy import insert as insert_statement
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Executor
from app.notes.models import Note
from app.notes.schemas import NoteListQuery, NoteOut


def _live(tenant_id: uuid.UUID) -> ColumnElement[bool]:
    return and_(Note.tenant_id == tenant_id, Note.deleted_at.is_(None))


# Built once, with bind parameters: a statement made per call pays for its construction and its
# cache key on every request (docs/performance.md).
_GET = select(Note).where(
    Note.id == bindparam("note_id"),
    Note.tenant_id == bindparam("tenant_id"),
    Note.deleted_at.is_(None),
)
# A read that changes nothing needs no ORM object: the columns the API shows, as a row that
# `NoteOut` validates straight from (no identity map, no instance state, no unit of work).
_TABLE = cast("Table", Note.__table__)
_NOTES = _TABLE.c
_SHOWN = (
    *(_NOTES[name] for name in ("id", "title", "body", "format", "version", "word_count")),
    _NOTES.created_at,
    _NOTES.updated_at,
)
_READ = select(*_SHOWN).where(
    _NOTES.id == bindparam("note_id"),
    _NOTES.tenant_id == bindparam("tenant_id"),
    _NOTES.deleted_at.is_(None),
)
# A create needs none either: one round trip, the server-side defaults (id, version,
# timestamps) come back by RETURNING. On the table, not the class: an insert of the mapped
# class runs the ORM's bulk-insert path, which builds an instance nobody uses.
_INSERT = insert_statement(_TABLE).returning(*_SHOWN)


async def insert(
    session: Executor, tenant_id: uuid.UUID, title: str, body: str, note_format: str = "text"
) -> NoteOut:
    """`body` as stored: an HTML body must already be sanitized (`app.notes.html_policy`)."""
    values = {"tenant_id": tenant_id, "title": title, "body": body, "format": note_format}
    row = (await session.execute(_INSERT, values)).one()
    return NoteOut.model_validate(row, from_attributes=True)


async def get(session: AsyncSession, tenant_id: uuid.UUID, note_id: uuid.UUID) -> Note | None:
    note: Note | None = await session.scalar(_GET, {"note_id": note_id, "tenant_id": tenant_id})
    return note


async def read(session: Executor, tenant_id: uuid.UUID, note_id: uuid.UUID) -> NoteOut | None:
    """The note as the API shows it, for reading only (`get` returns the ORM object, to change).
    On a connection (`Database.run_core`) or in a session's transaction."""
    row = (await session.execute(_READ, {"note_id": note_id, "tenant_id": tenant_id})).first()
    return NoteOut.model_validate(row, from_attributes=True) if row is not None else None


def _filtered(tenant_id: uuid.UUID, query: NoteListQuery) -> Select[Note]:
    statement = select(Note).where(_live(tenant_id))
    if query.created_after is not None:
        statement = statement.where(Note.created_at > query.created_after)
    if query.created_before is not None:
        statement = statement.where(Note.created_at < query.created_before)
    if query.title_prefix is not None:
        escaped = query.title_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        statement = statement.where(Note.title.like(f"{escaped}%", escape="\\"))
    return statement


def list_statement(
    tenant_id: uuid.UUID, query: NoteListQuery, after: tuple[datetime, uuid.UUID] | None
) -> Select[Note]:
    """Up to `limit + 1` notes after the keyset position `after` (the extra row says "more")."""
    statement = _filtered(tenant_id, query)
    key = tuple_(Note.created_at, Note.id)
    descending = query.sort.startswith("-")
    if after is not None:
        statement = statement.where(key < tuple_(*after) if descending else key > tuple_(*after))
    order = (Note.created_at.desc(), Note.id.desc()) if descending else (Note.created_at, Note.id)
    return statement.order_by(*order).limit(query.limit + 1)


async def list_page(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    query: NoteListQuery,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[Note]:
    return list(await session.scalars(list_statement(tenant_id, query, after)))


async def update_note(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    note_id: uuid.UUID,
    changes: dict[str, Any],
    expected_version: int | None,
) -> Note | None:
    """Apply `changes` when the version matches; None when no live note matched."""
    conditions = [Note.id == note_id, _live(tenant_id)]
    if expected_version is not None:
        conditions.append(Note.version == expected_version)
    statement = (
        update(Note)
        .where(*conditions)
        .values(**changes, version=Note.version + 1, updated_at=func.now())
        .returning(Note)
        # The note is already in the session (read for If-Match): refresh it from RETURNING.
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    note: Note | None = await session.scalar(statement)
    return note


async def soft_delete(
    session: AsyncSession, tenant_id: uuid.UUID, note_id: uuid.UUID, expected_version: int | None
) -> bool:
    conditions = [Note.id == note_id, _live(tenant_id)]
    if expected_version is not None:
        conditions.append(Note.version == expected_version)
    result = await session.execute(
        update(Note)
        .where(*conditions)
        .values(deleted_at=func.now(), version=Note.version + 1)
        .returning(Note.id)
    )
    return result.first() is not None


async def stats(session: AsyncSession, tenant_id: uuid.UUID) -> tuple[int, datetime | None]:
    """How many live notes the tenant has, and when the newest was created."""
    statement = select(func.count(), func.max(Note.created_at)).where(_live(tenant_id))
    count, newest = (await session.execute(statement)).one()
    return int(count), newest
