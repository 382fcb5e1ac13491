"""Standard Webhooks v1 signatures (HMAC-SHA256), as pure functions over the exact bytes sent.

Written with hmac/hashlib rather than on the `standardwebhooks` package (which the tests use as
an independent peer): its `Webhook.verify` raises a bare ValueError or binascii.Error on a
malformed `webhook-signature` (attacker input would become a 500), hard-codes a 5-minute
tolerance, decodes the body to str, and has no replay store. Signing is ten lines of stdlib.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 - the spec's prefix, not a secret
SECRET_BYTES = 32  # the spec asks for 24 to 64 random bytes
VERSION = "v1"


class MalformedSecretError(ValueError):
    """A secret that is not `whsec_` followed by base64 of 24 to 64 bytes."""


def generate_secret() -> str:
    """A fresh per-destination secret, `whsec_<base64 of 32 random bytes>`."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key: the base64-decoded part after `whsec_`."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as error:
        raise MalformedSecretError("webhook secret is not base64") from error
    if not 24 <= len(key) <= 64:
        raise MalformedSecretError("webhook secret must decode to 24..64 bytes")
    return key


def signature(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> bytes:
    """HMAC-SHA256 over `{id}.{timestamp}.{body}`: the raw digest."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value: `v1,<base64 signature>`."""
    digest = signature(secret_key(secret), webhook_id, timestamp, body)
    return f"{VERSION},{base64.b64encode(digest).decode()}"


def delivery_headers(secret: str, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one delivery attempt."""
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, webhook_id, timestamp, body),
    }
