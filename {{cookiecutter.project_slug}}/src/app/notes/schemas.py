"""Request and response schemas of the notes API. Unknown fields and parameters are rejected."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from app.http.api_contract import without_null

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339_only(value: Any) -> Any:
    """Refuse what pydantic's lax mode would read as a date-time: `0.5` (a Unix time), dates."""
    if isinstance(value, str) and not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 date-time with an offset, like 2026-01-31T12:00:00Z")
    return value


# What the OpenAPI document promises (`format: date-time`), and nothing looser.
Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_only)]
# The limit holds for the body as sent and for the body as stored (an HTML body after sanitizing,
# which escaping can lengthen); the table's check constraint says the same.
BODY_MAX_CHARS = 20_000
NoteFormat = Literal["text", "html"]
FORMAT_DESCRIPTION = (
    "`text`: the body is plain text (escape it when you display it). `html`: the body is HTML, "
    "sanitized against an allow-list before it is stored (docs/api.md, HTML notes)."
)


# PostgreSQL text cannot hold U+0000: the document and the validation refuse it up front (422
# naming the field), where the database would refuse it without saying which.
NO_NUL = r"^[^\x00]*$"
Title = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_NUL)]
Body = Annotated[str, StringConstraints(max_length=BODY_MAX_CHARS, pattern=NO_NUL)]


class NoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    body: Body = ""
    format: NoteFormat = Field(default="text", description=FORMAT_DESCRIPTION)


def _at_least_one_and_never_null(schema: dict[str, Any]) -> None:
    """The document says what `NoteUpdate` enforces: `{}` and `null` values are refused."""
    schema["minProperties"] = 1
    for field in schema["properties"].values():
        without_null(field)


class NoteUpdate(BaseModel):
    """A partial update: only the fields sent change; at least one, and none of them null."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_at_least_one_and_never_null)

    # `None` means "not sent": the validator below refuses a `null` sent.
    title: Title | None = None
    body: Body | None = None
    # Switching to `html` sanitizes the body the note keeps.
    format: NoteFormat | None = Field(default=None, description=FORMAT_DESCRIPTION)

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("send at least one of: title, body, format")
        for name in ("title", "body", "format"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class NoteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    title: str
    body: str
    format: NoteFormat = Field(description=FORMAT_DESCRIPTION)
    version: int
    word_count: int | None = Field(description="Computed in the background; null until then")
    created_at: datetime
    updated_at: datetime


class NotePage(BaseModel):
    items: list[NoteOut]
    next_cursor: str | None


CURSOR_DESCRIPTION = (
    "An opaque token issued by this API: the `next_cursor` of the previous page, sent back "
    "unchanged with the same `sort` and filters. It is signed, so any other value (made up, "
    "edited, from another query or tenant) is refused with 400 `invalid-cursor`."
)
RANGE_DESCRIPTION = (
    "RFC 3339 date-time with an offset. When both are sent, `created_after` must be earlier "
    "than `created_before` (422 otherwise)."
)


class NoteListQuery(BaseModel):
    """Query parameters of `GET /api/v1/notes`: bounded page size, allow-listed sort and filters."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=512, description=CURSOR_DESCRIPTION)
    sort: Literal["-created_at", "created_at"] = "-created_at"
    created_after: Timestamp | None = Field(default=None, description=RANGE_DESCRIPTION)
    created_before: Timestamp | None = Field(default=None, description=RANGE_DESCRIPTION)
    title_prefix: str | None = Field(default=None, min_length=1, max_length=100, pattern=NO_NUL)

    @model_validator(mode="after")
    def _ordered_range(self) -> Self:
        if self.created_after and self.created_before and self.created_after >= self.created_before:
            raise ValueError("created_after must be earlier than created_before")
        return self

    def scope(self) -> str:
        """What a cursor is bound to: everything but the position and the page size."""
        return "|".join(
            str(value)
            for value in (self.sort, self.created_after, self.created_before, self.title_prefix)
        )


class NoteStats(BaseModel):
    """Counts over the tenant's live notes, served from the cache (docs/caching.md)."""

    notes: int
    newest_created_at: datetime | None
