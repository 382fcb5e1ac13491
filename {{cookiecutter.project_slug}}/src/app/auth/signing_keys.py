"""The keys that sign browser-session access tokens, and how `SESSION_SIGNING_KEYS` spells them.

The setting is a comma-separated list of `KID:SECRET` entries. The first entry signs every new
token; every entry verifies the tokens that name its `kid`. Rotation puts a new entry first and
keeps the old one until every token it signed has expired (the access-token lifetime), then
removes it: from then on a token naming the removed `kid` is refused like an unknown one
(docs/authentication.md, "Rotating the signing keys").

No message here ever contains a secret; a `kid` is public (it is in every token's header).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from app.config.secret_entropy import MIN_SECRET_KEY_BITS, estimated_entropy_bits

_KID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# HS256 wants a key at least as long as its hash (RFC 7518 section 3.2): 32 bytes.
MIN_SIGNING_SECRET_CHARS = 32
DEV_SIGNING_KID = "dev"
DEV_SIGNING_SECRET = "dev-only-session-signing-key-change-me-in-production"  # noqa: S105 - refused in production
DEV_SESSION_SIGNING_KEYS = f"{DEV_SIGNING_KID}:{DEV_SIGNING_SECRET}"


@dataclass(frozen=True)
class SigningKeys:
    """`signing_kid` signs; every key of `secrets_by_kid` (the signer too) verifies."""

    signing_kid: str
    secrets_by_kid: dict[str, bytes]

    @property
    def signing_secret(self) -> bytes:
        return self.secrets_by_kid[self.signing_kid]

    def verifying_secret(self, kid: str) -> bytes | None:
        """The secret of `kid`, or None for an unknown or retired (removed) key id."""
        return self.secrets_by_kid.get(kid)


def _entry(number: int, entry: str) -> tuple[str, str]:
    kid, separator, secret = entry.partition(":")
    if not separator or not _KID.match(kid) or not secret:
        raise ValueError(
            f"entry {number} must look like KID:SECRET (KID of letters, digits, '.', '_', '-')"
        )
    if len(secret) < MIN_SIGNING_SECRET_CHARS:
        raise ValueError(f"the secret of key {kid!r} must be at least 32 characters")
    return kid, secret


def parse_signing_keys(raw: str) -> SigningKeys:
    """Parse `KID:SECRET[,KID:SECRET...]`; a ValueError names what is wrong, never a secret."""
    entries = [part.strip() for part in raw.split(",") if part.strip()]
    if not entries:
        raise ValueError("must hold at least one KID:SECRET entry")
    keys: dict[str, bytes] = {}
    for number, entry in enumerate(entries, start=1):
        kid, secret = _entry(number, entry)
        if kid in keys:
            raise ValueError(f"names key {kid!r} twice")
        keys[kid] = secret.encode()
    return SigningKeys(signing_kid=next(iter(keys)), secrets_by_kid=keys)


def check_production_signing_keys(keys: SigningKeys) -> None:
    """Production: no development key, and every secret random-looking (like `SECRET_KEY`)."""
    for kid, secret in keys.secrets_by_kid.items():
        if kid == DEV_SIGNING_KID or secret == DEV_SIGNING_SECRET.encode():
            raise ValueError(
                "still holds the development key; run `auth rotate-keys` and set what it prints"
            )
        if estimated_entropy_bits(secret.decode()) < MIN_SECRET_KEY_BITS:
            raise ValueError(
                f"the secret of key {kid!r} does not look random; `auth rotate-keys` makes one"
            )


def new_signing_entry(now: datetime | None = None) -> str:
    """A fresh `KID:SECRET` entry: a dated, unique key id and 32 random bytes (base64url)."""
    moment = (now or datetime.now(UTC)).strftime("%Y%m%d")
    return f"k{moment}-{secrets.token_hex(3)}:{secrets.token_urlsafe(32)}"


def rotated_value(current: str, entry: str) -> str:
    """`SESSION_SIGNING_KEYS` after a rotation: `entry` signs, the current keys still verify."""
    kept = [part.strip() for part in current.split(",") if part.strip()]
    return ",".join([entry, *kept])
