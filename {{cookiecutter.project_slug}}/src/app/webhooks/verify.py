"""Verify webhooks we receive from others (Standard Webhooks v1): signature, time, replay.

Checks run cheapest first, and the replay store is written only for a genuine signature, so a
forger cannot burn ids: malformed headers (400), a timestamp outside the tolerance in either
direction (401), no matching `v1` signature under any trusted secret (401, constant-time
compare), then `SET NX EX` of the `webhook-id` in Redis (409 when seen before). The replay store
fails **closed**: with Redis unreachable nothing is accepted (503 with Retry-After), because
accepting unverifiable-as-fresh messages is exactly the replay this guards against; the sender
retries later, as Standard Webhooks senders do on any non-2xx.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.http.errors import DomainError, ServiceUnavailableError
from app.webhooks.signing import VERSION, secret_key, signature

DEFAULT_TOLERANCE_SECONDS = 300
_ID = re.compile(r"[\x21-\x7e]{1,256}")
_TIMESTAMP = re.compile(r"\d{1,12}")
MAX_SIGNATURE_HEADER = 4096


class WebhookMalformedError(DomainError):
    status = 400
    slug = "webhook-malformed"
    title = "Webhook headers missing or malformed"


class WebhookUnverifiedError(DomainError):
    status = 401
    slug = "webhook-unverified"
    title = "Webhook signature or timestamp not accepted"


class WebhookReplayedError(DomainError):
    """A genuine message seen before. A receiver may answer 2xx to it (already processed)."""

    status = 409
    slug = "webhook-replayed"
    title = "Webhook already received"


class ReplayStoreUnavailableError(ServiceUnavailableError):
    slug = "webhook-replay-store-unavailable"
    title = "Webhook replay store unavailable"


@dataclass(frozen=True)
class WebhookVerifier:
    """One sender's trust list (several secrets during a rotation) and our replay store."""

    secrets: Sequence[str]
    redis: Redis
    namespace: str
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS
    clock: Callable[[], float] = field(default=time.time)

    def __post_init__(self) -> None:
        # A tolerance of 0 must not silently mean "no check" (stripe/stripe-php#1984).
        if self.tolerance_seconds < 1:
            raise ValueError("tolerance_seconds must be at least 1")
        if not self.secrets:
            raise ValueError("at least one trusted secret is required")

    @property
    def replay_ttl_seconds(self) -> int:
        """A message is acceptable for 2 x tolerance (too-new to too-old): remember it as long."""
        return 2 * self.tolerance_seconds + 1

    async def verify(self, headers: Mapping[str, str], body: bytes) -> str:
        """Check one delivery; returns its `webhook-id`, or raises a 4xx/503 domain error."""
        webhook_id, timestamp, signatures = _parse(headers)
        now = self.clock()
        if abs(now - timestamp) > self.tolerance_seconds:
            raise WebhookUnverifiedError("webhook-timestamp is outside the accepted window.")
        if not self._matches(webhook_id, timestamp, body, signatures):
            raise WebhookUnverifiedError("No webhook-signature matches a trusted secret.")
        await self._remember(webhook_id)
        return webhook_id

    def _matches(self, webhook_id: str, timestamp: int, body: bytes, given: list[bytes]) -> bool:
        found = False
        for secret in self.secrets:
            expected = signature(secret_key(secret), webhook_id, timestamp, body)
            for candidate in given:
                # No early exit: the time taken does not depend on which signature matched.
                found |= hmac.compare_digest(expected, candidate)
        return found

    async def _remember(self, webhook_id: str) -> None:
        key = self.namespace + hashlib.sha256(webhook_id.encode()).hexdigest()
        try:
            fresh = await self.redis.set(key, b"1", nx=True, ex=self.replay_ttl_seconds)
        except (RedisError, OSError) as error:
            raise ReplayStoreUnavailableError(
                "Cannot check this webhook for replay now; retry later.", retry_after=5
            ) from error
        if not fresh:
            raise WebhookReplayedError("This webhook-id was already received.")


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:  # plain dicts are case-sensitive; Starlette's Headers are not
        value = {k.lower(): v for k, v in headers.items()}.get(name)
    if value is None:
        raise WebhookMalformedError(f"The {name} header is required.")
    return value


def _parse(headers: Mapping[str, str]) -> tuple[str, int, list[bytes]]:
    webhook_id = _header(headers, "webhook-id")
    raw_timestamp = _header(headers, "webhook-timestamp")
    raw_signatures = _header(headers, "webhook-signature")
    if not _ID.fullmatch(webhook_id):
        raise WebhookMalformedError("webhook-id must be 1 to 256 visible ASCII characters.")
    if not _TIMESTAMP.fullmatch(raw_timestamp):
        raise WebhookMalformedError("webhook-timestamp must be integer Unix seconds.")
    if len(raw_signatures) > MAX_SIGNATURE_HEADER:
        raise WebhookMalformedError("webhook-signature is too long.")
    signatures = [sig for item in raw_signatures.split() if (sig := _v1_signature(item))]
    if not signatures:
        raise WebhookMalformedError("webhook-signature holds no v1,<base64> signature.")
    return webhook_id, int(raw_timestamp), signatures


def _v1_signature(item: str) -> bytes | None:
    """The decoded signature of one `v1,<base64>` entry; None for other versions or garbage."""
    version, _, encoded = item.partition(",")
    if version != VERSION:
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded if len(decoded) == hashlib.sha256().digest_size else None
