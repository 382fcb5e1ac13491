"""Which files are accepted: the declared type must be allowed, and the first bytes must agree.

The declared type (tus `filetype` metadata) is the client's word; the bytes are sniffed with
`filetype` (PyPI: pure Python, no libmagic needed on a fresh laptop) from the first
`SNIFF_BYTES`. A type the sniffer recognises must match the declaration exactly; a declared type
it can recognise (a PNG, a PDF) must be recognised, so an executable declared as `text/plain`
or a script declared as `image/png` is refused either way. Types without magic numbers (plain
text, CSV) are accepted when the bytes match no known signature.
"""

from __future__ import annotations

from collections.abc import Iterable

import filetype  # type: ignore[import-untyped]  # filetype ships no type information

from app.http.errors import DomainError

# What filetype reads of a file's head (its own _NUM_SIGNATURE_BYTES).
SNIFF_BYTES = 8192
RECOGNISABLE: frozenset[str] = frozenset(kind.mime for kind in filetype.types)


class UploadTypeRefusedError(DomainError):
    status = 415
    slug = "upload-type-refused"
    title = "File type not accepted"


def check_declared(content_type: str, allowed: Iterable[str]) -> None:
    """415 unless the declared type is on UPLOAD_ALLOWED_TYPES."""
    allowed = list(allowed)
    if content_type not in allowed:
        raise UploadTypeRefusedError(
            f"Files of type {content_type[:100]} are not accepted; accepted: {', '.join(allowed)}.",
            declared=content_type[:100],
        )


def sniffed_type(head: bytes) -> str | None:
    """The media type the first bytes show, or None when they match no known signature."""
    kind = filetype.guess(head[:SNIFF_BYTES])
    return str(kind.mime) if kind is not None else None


def check_sniffed(declared: str, head: bytes) -> None:
    """415 when the first bytes contradict the declared type."""
    found = sniffed_type(head)
    if found == declared or (found is None and declared not in RECOGNISABLE):
        return
    shown = found or "no recognised type"
    raise UploadTypeRefusedError(
        f"The file was declared {declared} but its first bytes show {shown}.",
        declared=declared,
        sniffed=found,
    )
