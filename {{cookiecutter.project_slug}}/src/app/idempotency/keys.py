"""The `Idempotency-Key` header: parsing, validation and the request fingerprint.

The draft makes the field an RFC 9651 String (`Idempotency-Key: "abc"`); many clients send it bare,
so both are accepted. The key is validated before any lookup (draft §5) and scoped to the caller,
so two tenants may use the same key independently.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request

from app.http.errors import DomainError

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
_QUOTED = re.compile(r'^"((?:[\x20-\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"$')
# Bare keys: visible ASCII except the quote and backslash of the structured-field syntax.
_BARE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
# The same two forms for the OpenAPI document (app.http.api_contract), 1 to 255 characters unquoted.
_BARE_KEY = r"[\x21\x23-\x5b\x5d-\x7e]{1,255}"
_QUOTED_KEY = r'"([\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\]){1,255}"'
KEY_SCHEMA: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 2 + 2 * MAX_KEY_LENGTH,
    "pattern": f"^({_BARE_KEY}|{_QUOTED_KEY})$",
}
KEY_DESCRIPTION = (
    "A fresh value per operation, a UUID for instance, sent again only to retry that operation: "
    '1 to 255 characters, bare (visible ASCII without `"` or `\\`) or quoted as an RFC 9651 '
    "String. A retry with the same body replays the first answer; the same key with another "
    "request is a 422 (`idempotency-key-reused`); one still running, a 409."
)


class IdempotencyKeyError(DomainError):
    status = 400
    slug = "idempotency-key-invalid"
    title = "Idempotency-Key missing or malformed"


@dataclass(frozen=True)
class IdempotentRequest:
    """A validated key and the fingerprint of the request that carries it."""

    key: str
    fingerprint: bytes


def parse_key(raw: str | None) -> str:
    """The key from the header value, or `IdempotencyKeyError` (a 400 problem)."""
    if raw is None:
        raise IdempotencyKeyError(
            f'This operation requires an {HEADER} header, e.g. {HEADER}: "<a fresh UUID>".'
        )
    quoted = _QUOTED.match(raw)
    key = re.sub(r"\\(.)", r"\1", quoted.group(1)) if quoted else raw
    if not quoted and not _BARE.match(raw):
        raise IdempotencyKeyError(f"{HEADER} must be printable ASCII without spaces or controls.")
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise IdempotencyKeyError(f"{HEADER} must be 1 to {MAX_KEY_LENGTH} characters long.")
    return key


def fingerprint(method: str, path: str, body: bytes) -> bytes:
    """What makes two requests "the same": method, path and the exact body bytes."""
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()


async def require_idempotency_key(
    request: Request,
    idempotency_key: Annotated[
        str | None, Header(alias=HEADER, description="A fresh UUID per operation, quoted")
    ] = None,
) -> IdempotentRequest:
    """Dependency for unsafe POST routes; its presence is what the fitness test looks for.

    The header is declared (so it appears in OpenAPI) but validated here, to answer 400.
    """
    key = parse_key(idempotency_key)
    body = await request.body()
    return IdempotentRequest(key, fingerprint(request.method, request.url.path, body))


IdempotencyKeyDep = Annotated[IdempotentRequest, Depends(require_idempotency_key)]


def idempotent_post_responses(invalid: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` of a POST taking `IdempotencyKeyDep`: its key errors, and what 422 means."""
    return {
        400: {"description": "Idempotency-Key missing or malformed"},
        409: {"description": "A request with this Idempotency-Key is in flight"},
        422: {"description": f"{invalid}, or Idempotency-Key reused for another request"},
    }


def idempotency_exempt(reason: str) -> dict[str, str]:
    """`openapi_extra` for a POST that is safe to repeat without a key; say why."""
    if not reason.strip():
        raise ValueError("an exemption needs a reason")
    return {"x-idempotency-exempt": reason}
