"""Endpoint secrets encrypted at rest (AES-256-GCM) under a key the database never sees.

The worker must read each secret to sign with it, so it cannot be hashed like an API key. It is
stored sealed instead: `v1.<base64 nonce + ciphertext>`, with the tenant id as associated data, so
a sealed value copied into another tenant's row does not open. The key is derived (HKDF-SHA256)
from `SECRET_KEY`, which production refuses to leave at its development default. A database dump,
a replica or the owner role therefore yields no usable secret. Rotating `SECRET_KEY` makes the
stored secrets unreadable: re-create the endpoints (docs/webhooks.md).
"""

from __future__ import annotations

import base64
import os
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "v1."
NONCE_BYTES = 12


class UnsealError(ValueError):
    """A stored secret that does not open under this key and tenant."""


def sealing_key(secret_key: str) -> bytes:
    """The 256-bit key for endpoint secrets, derived from the service's SECRET_KEY."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"webhook-endpoint-secrets")
    return hkdf.derive(secret_key.encode())


def seal(key: bytes, tenant_id: uuid.UUID, secret: str) -> str:
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, secret.encode(), tenant_id.bytes)
    return PREFIX + base64.b64encode(nonce + sealed).decode()


def unseal(key: bytes, tenant_id: uuid.UUID, stored: str) -> str:
    if not stored.startswith(PREFIX):
        raise UnsealError("not a sealed webhook secret")
    try:
        raw = base64.b64decode(stored.removeprefix(PREFIX), validate=True)
        opened = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], tenant_id.bytes)
    except (InvalidTag, ValueError) as error:
        raise UnsealError("webhook secret does not open under this key and tenant") from error
    return opened.decode()
