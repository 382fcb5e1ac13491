"""API key format, generation and hashing.

A key reads `ak_<key id, 32 hex>_<secret, 43 base64url>`. The id is public and finds the row; only a
SHA-256 of the 256-bit random secret is stored. A fast hash is right here (unlike for passwords):
the secret has full entropy, so nothing is left to brute-force, and every request pays for it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass

_FORMAT = re.compile(r"^ak_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class IssuedKey:
    key_id: uuid.UUID
    secret_hash: bytes
    plaintext: str


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("ascii")).digest()


def issue_key() -> IssuedKey:
    """A new random key; `plaintext` is shown once and never stored."""
    key_id = uuid.uuid4()
    secret = secrets.token_urlsafe(32)
    return IssuedKey(key_id, hash_secret(secret), f"ak_{key_id.hex}_{secret}")


def parse_key(presented: str) -> tuple[uuid.UUID, bytes] | None:
    """(key id, secret hash) of a well-formed key, or None for anything else."""
    match = _FORMAT.match(presented)
    if match is None:
        return None
    return uuid.UUID(hex=match.group(1)), hash_secret(match.group(2))
