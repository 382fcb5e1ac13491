"""Entity tags from row versions, and `If-Match` / `If-None-Match` parsing (RFC 9110 §13.1)."""

from __future__ import annotations

import re
from typing import Any

from app.http.errors import PreconditionFailedError

_TAG = re.compile(r'\s*(W/)?"([^"]*)"\s*')
# What `If-Match` accepts, for the OpenAPI document and request validation: `*` or a list of
# entity tags (RFC 9110 section 8.8.3, without commas inside a tag, which this list cannot hold).
_ENTITY_TAG = r'(W/)?"[\x21\x23-\x2b\x2d-\x7e]*"'
IF_MATCH_PATTERN = rf"^(\*|{_ENTITY_TAG}([ \t]*,[ \t]*{_ENTITY_TAG})*)$"


# `openapi_extra` of a GET route whose 200 carries an `ETag`: app.middleware.conditional_get
# answers its `If-None-Match` for it, so the route has no such parameter of its own to document.
REVALIDATES: dict[str, Any] = {
    "parameters": [
        {
            "name": "If-None-Match",
            "in": "header",
            "required": False,
            "description": "The `ETag` you hold: 304 when it is still the current version.",
            "schema": {"type": "string"},
        }
    ]
}


def etag_for(version: int) -> str:
    """A strong entity tag for a row version."""
    return f'"v{version}"'


class _MalformedTagListError(ValueError):
    pass


def _listed_tags(header: str) -> list[tuple[bool, str]] | None:
    """(weak, opaque tag) for each entity tag of a list; None for `*` (any version)."""
    if header.strip() == "*":
        return None
    tags: list[tuple[bool, str]] = []
    for part in header.split(","):
        match = _TAG.fullmatch(part)
        if match is None:
            raise _MalformedTagListError(header)
        tags.append((match.group(1) is not None, match.group(2)))
    return tags


def _versions(header: str) -> set[int] | None:
    """Versions named strongly by an ETag list; None for `*` (any version)."""
    try:
        tags = _listed_tags(header)
    except _MalformedTagListError:
        raise PreconditionFailedError("The entity tag list is malformed.") from None
    if tags is None:
        return None
    return {int(tag[1:]) for weak, tag in tags if not weak and re.fullmatch(r"v[0-9]{1,9}", tag)}


def check_if_match(header: str | None, current_version: int) -> None:
    """Raise 412 unless `If-Match` is absent, `*`, or names the current version (strongly)."""
    if header is None:
        return
    versions = _versions(header)
    if versions is not None and current_version not in versions:
        raise PreconditionFailedError(
            "The resource changed since you read it; fetch it again and retry.",
            current_etag=etag_for(current_version),
        )


def names_entity_tag(if_none_match: str, etag: str) -> bool:
    """True when an `If-None-Match` value names `etag` by weak comparison, or is `*`.

    A malformed header names nothing: the caller answers in full, which is always correct.
    """
    current = _TAG.fullmatch(etag)
    try:
        tags = _listed_tags(if_none_match)
    except _MalformedTagListError:
        return False
    if tags is None:
        return True
    return current is not None and any(tag == current.group(2) for _, tag in tags)
