"""Access tokens (signed JWTs, PyJWT) and refresh and device tokens (opaque random strings).

An access token is an HS256 JWT with its key id in the `kid` header: `sub` is the user, `tid` the
tenant, `sid` the session family, `role` the membership role at issue, `jti` a unique id, and
`exp`/`iat`/`nbf`.
Verification pins the algorithm, requires every claim, checks issuer and audience, and answers
None for anything wrong, an unknown or retired `kid` included (RFC 8725, OWASP JWT cheat sheet).

A refresh token reads `rt1.<tenant id, 32 hex>.<secret, 43 base64url>`: the tenant lets the
service open a transaction scoped to it (row-level security) before it knows anything else; a
changed tenant finds no row. Only SHA-256 hashes of refresh secrets and device ids are stored:
like API keys, they carry 256 random bits, so a fast hash leaves nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from app.auth.signing_keys import SigningKeys

ALGORITHM = "HS256"
ISSUER = "app"
AUDIENCE = "app-session"
_REQUIRED = ["exp", "iat", "nbf", "iss", "aud", "sub", "tid", "sid", "role", "email", "jti"]
_REFRESH = re.compile(r"^rt1\.([0-9a-f]{32})\.([A-Za-z0-9_-]{43})$")
_DEVICE = re.compile(r"^[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True)
class AccessClaims:
    """Who an access token speaks for: user, tenant, session family and role at issue."""

    user_id: uuid.UUID
    email: str
    tenant_id: uuid.UUID
    family_id: uuid.UUID
    role: str


def issue_access_token(
    keys: SigningKeys, claims: AccessClaims, lifetime: timedelta, now: datetime | None = None
) -> str:
    """A JWT signed with the first (signing) key, valid from `now` for `lifetime`."""
    issued = now or datetime.now(UTC)
    payload: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(claims.user_id),
        "email": claims.email,
        "tid": str(claims.tenant_id),
        "sid": str(claims.family_id),
        "role": claims.role,
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime,
        # Unique per token: two issued in one second differ, and one can be named in a log.
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(
        payload, keys.signing_secret, algorithm=ALGORITHM, headers={"kid": keys.signing_kid}
    )


def verify_access_token(keys: SigningKeys, token: str) -> AccessClaims | None:
    """The claims of a valid token; None when it is malformed, forged, expired or its `kid` is
    not (or no longer) configured."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        secret = keys.verifying_secret(kid) if isinstance(kid, str) else None
        if secret is None:
            return None
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": _REQUIRED},
        )
        return AccessClaims(
            user_id=uuid.UUID(payload["sub"]),
            email=str(payload["email"]),
            tenant_id=uuid.UUID(payload["tid"]),
            family_id=uuid.UUID(payload["sid"]),
            role=str(payload["role"]),
        )
    except (jwt.PyJWTError, ValueError, TypeError, AttributeError):
        return None


def token_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("ascii")).digest()


@dataclass(frozen=True)
class IssuedRefresh:
    tenant_id: uuid.UUID
    secret_hash: bytes
    cookie_value: str


def new_refresh_token(tenant_id: uuid.UUID) -> IssuedRefresh:
    secret = secrets.token_urlsafe(32)
    return IssuedRefresh(tenant_id, token_hash(secret), f"rt1.{tenant_id.hex}.{secret}")


def parse_refresh_token(value: str) -> tuple[uuid.UUID, bytes] | None:
    """(tenant id, secret hash) of a well-formed refresh cookie, or None."""
    match = _REFRESH.match(value)
    if match is None:
        return None
    return uuid.UUID(hex=match.group(1)), token_hash(match.group(2))


def new_device_id() -> str:
    return secrets.token_urlsafe(32)


def device_hash(value: str | None) -> bytes | None:
    """The stored form of a device cookie, or None when it is absent or malformed."""
    if value is None or not _DEVICE.match(value):
        return None
    return token_hash(value)
