"""Opaque, tamper-evident cursors for keyset pagination.

A cursor is the last row's sort key, base64url-encoded and signed with HMAC-SHA256 over the key and
the query's scope (tenant, sort and filters). A cursor edited by hand, or replayed with other
filters or by another tenant, fails the signature and is rejected as a 400 problem.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from app.http.errors import DomainError

_MAC_BYTES = 16


class InvalidCursorError(DomainError):
    status = 400
    slug = "invalid-cursor"
    title = "Invalid cursor"


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, scope: str, raw: bytes) -> bytes:
    return hmac.new(secret, scope.encode() + b"\x00" + raw, hashlib.sha256).digest()[:_MAC_BYTES]


def encode_cursor(position: dict[str, Any], secret: bytes, scope: str) -> str:
    """Sign `position` (JSON-serialisable) for this `scope`."""
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return f"{_b64encode(raw)}.{_b64encode(_mac(secret, scope, raw))}"


def decode_cursor(cursor: str, secret: bytes, scope: str) -> dict[str, Any]:
    """The position signed in `cursor`, or `InvalidCursorError` for anything else."""
    body, _, mac = cursor.partition(".")
    try:
        raw, presented = _b64decode(body), _b64decode(mac)
    except (binascii.Error, ValueError):
        raise InvalidCursorError("The cursor is not one this API issued.") from None
    if not hmac.compare_digest(presented, _mac(secret, scope, raw)):
        raise InvalidCursorError("The cursor is not valid for this query.")
    position: dict[str, Any] = json.loads(raw)
    return position
