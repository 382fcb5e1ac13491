"""Entity tags from row versions, and `If-Match` / `If-None-Match` parsing (RFC 9110 §13.1)."""

from __future__ import annotations

import re

from app.http.errors import PreconditionFailedError

_TAG = re.compile(r'\s*(W/)?"([^"]*)"\s*')
# What `If-Match` accepts, for the OpenAPI document and request validation: `*` or a list of
# entity tags (RFC 9110 section 8.8.3, without commas inside a tag, which this list cannot hold).
_ENTITY_TAG = r'(W/)?"[\x21\x23-\x2b\x2d-\x7e]*"'
IF_MATCH_PATTERN = rf"^(\*|{_ENTITY_TAG}([ \t]*,[ \t]*{_ENTITY_TAG})*)$"


def etag_for(version: int) -> str:
    """A strong entity tag for a row version."""
    return f'"v{version}"'


def _versions(header: str, allow_weak: bool) -> set[int] | None:
    """Versions named by an ETag list; None for `*` (any version)."""
    if header.strip() == "*":
        return None
    versions: set[int] = set()
    for part in header.split(","):
        match = _TAG.fullmatch(part)
        if match is None:
            raise PreconditionFailedError("The entity tag list is malformed.")
        weak, tag = match.groups()
        if (allow_weak or not weak) and re.fullmatch(r"v[0-9]{1,9}", tag):
            versions.add(int(tag[1:]))
    return versions


def check_if_match(header: str | None, current_version: int) -> None:
    """Raise 412 unless `If-Match` is absent, `*`, or names the current version (strongly)."""
    if header is None:
        return
    versions = _versions(header, allow_weak=False)
    if versions is not None and current_version not in versions:
        raise PreconditionFailedError(
            "The resource changed since you read it; fetch it again and retry.",
            current_etag=etag_for(current_version),
        )


def matches_if_none_match(header: str | None, current_version: int) -> bool:
    """True when `If-None-Match` names the current version (weak comparison): answer 304."""
    if header is None:
        return False
    try:
        versions = _versions(header, allow_weak=True)
    except PreconditionFailedError:
        return False
    return versions is None or current_version in versions
