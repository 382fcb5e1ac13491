"""SEC-WEBHOOKS inbound: signatures interoperate with `standardwebhooks`; stale, future, forged
and replayed deliveries are refused with 4xx domain errors; the replay store fails closed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import standardwebhooks
from redis.asyncio import Redis

from app.cache.connections import create_redis
from app.dev.services import ServiceUrls
from app.http.errors import DomainError
from app.observability.logging import redact
from app.webhooks.signing import delivery_headers, generate_secret, sign
from app.webhooks.verify import (
    ReplayStoreUnavailableError,
    WebhookMalformedError,
    WebhookReplayedError,
    WebhookUnverifiedError,
    WebhookVerifier,
)
from tests.processes import free_port

BODY = b'{"type":"note.created","data":{"title":"caf\xc3\xa9"}}'


@pytest.fixture
async def redis(service_urls: ServiceUrls) -> AsyncIterator[Redis]:
    client = create_redis(service_urls.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def verifier(redis: Redis) -> Callable[..., WebhookVerifier]:
    def build(*secrets: str, **options: Any) -> WebhookVerifier:
        namespace = f"test-{uuid.uuid4().hex[:12]}:webhook-seen:"
        return WebhookVerifier(list(secrets), redis, namespace, **options)

    return build


def _headers(secret: str, timestamp: int | None = None) -> dict[str, str]:
    webhook_id = f"msg_{uuid.uuid4().hex}"
    return delivery_headers(secret, webhook_id, timestamp or int(time.time()), BODY)


def test_generated_secrets_are_per_destination_and_well_formed() -> None:
    first, second = generate_secret(), generate_secret()
    assert first != second
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32


def test_our_signature_is_hmac_sha256_and_standardwebhooks_accepts_it() -> None:
    """An independent computation and the reference library both agree with our signing."""
    secret, webhook_id, timestamp = generate_secret(), "msg_1", int(time.time())
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + BODY, hashlib.sha256)
    assert sign(secret, webhook_id, timestamp, BODY) == (
        "v1," + base64.b64encode(expected.digest()).decode()
    )
    headers = delivery_headers(secret, webhook_id, timestamp, BODY)
    assert standardwebhooks.Webhook(secret).verify(BODY, headers)["type"] == "note.created"


async def test_we_accept_what_standardwebhooks_signs(
    verifier: Callable[..., WebhookVerifier],
) -> None:
    secret, timestamp = generate_secret(), int(time.time())
    signed = standardwebhooks.Webhook(secret).sign(
        "msg_peer", datetime.fromtimestamp(timestamp, UTC), BODY.decode()
    )
    headers = {"webhook-id": "msg_peer", "webhook-timestamp": str(timestamp)}
    headers["webhook-signature"] = signed
    assert await verifier(secret).verify(headers, BODY) == "msg_peer"


async def test_any_signature_may_match_during_a_rotation(
    verifier: Callable[..., WebhookVerifier],
) -> None:
    """A sender rotating keys sends both signatures (and maybe other versions): receivers that
    trust only the old key, or only the new one, both accept."""
    old, new = generate_secret(), generate_secret()
    webhook_id, timestamp = f"msg_{uuid.uuid4().hex}", int(time.time())
    both = " ".join(
        [
            "v1a,c2lnbmVk",
            sign(old, webhook_id, timestamp, BODY),
            sign(new, webhook_id, timestamp, BODY),
        ]
    )
    headers = {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp)}
    assert await verifier(old).verify({**headers, "webhook-signature": both}, BODY) == webhook_id
    assert await verifier(new).verify({**headers, "webhook-signature": both}, BODY) == webhook_id


async def test_a_bad_signature_is_401(verifier: Callable[..., WebhookVerifier]) -> None:
    secret = generate_secret()
    with pytest.raises(WebhookUnverifiedError) as error:
        await verifier(secret).verify(_headers(generate_secret()), BODY)
    assert error.value.status == 401
    headers = _headers(secret)
    with pytest.raises(WebhookUnverifiedError):  # one byte of the body changed
        await verifier(secret).verify(headers, BODY.replace(b"caf", b"cab"))


@pytest.mark.parametrize("skew", [-301, 301, -86_400, 10**10])
async def test_old_and_future_timestamps_are_401(
    verifier: Callable[..., WebhookVerifier], skew: int
) -> None:
    """Both directions: a message from too long ago, or claiming to be from the future."""
    secret = generate_secret()
    headers = _headers(secret, int(time.time()) + skew)
    with pytest.raises(WebhookUnverifiedError, match="timestamp"):
        await verifier(secret).verify(headers, BODY)


async def test_a_replayed_id_is_409_and_remembered_for_the_whole_window(
    verifier: Callable[..., WebhookVerifier], redis: Redis
) -> None:
    secret = generate_secret()
    check = verifier(secret)
    headers = _headers(secret)
    await check.verify(headers, BODY)
    with pytest.raises(WebhookReplayedError) as error:
        await check.verify(headers, BODY)
    assert error.value.status == 409
    key = check.namespace + hashlib.sha256(headers["webhook-id"].encode()).hexdigest()
    # Acceptable from tolerance-too-new to tolerance-too-old: kept at least that long.
    assert await redis.ttl(key) > 2 * check.tolerance_seconds - 5


@pytest.mark.parametrize(
    "change",
    [
        {"webhook-id": None},
        {"webhook-timestamp": "1.5e9"},
        {"webhook-timestamp": "-5"},
        {"webhook-signature": "v1"},
        {"webhook-signature": "v1,not base64!"},
        {"webhook-signature": "v2,AAAA"},
        {"webhook-signature": "v1," + "A" * 5000},
        {"webhook-id": "has space"},
    ],
)
async def test_malformed_headers_are_400_never_a_crash(
    verifier: Callable[..., WebhookVerifier], change: dict[str, str | None]
) -> None:
    secret = generate_secret()
    headers: dict[str, str] = {}
    for name, value in {**_headers(secret), **change}.items():
        if value is not None:
            headers[name] = value
    with pytest.raises(WebhookMalformedError) as error:
        await verifier(secret).verify(headers, BODY)
    assert isinstance(error.value, DomainError)
    assert error.value.status == 400


async def test_redis_down_fails_closed_with_a_503() -> None:
    """Without the replay store nothing is accepted: a replay could not be told apart."""
    secret = generate_secret()
    down = create_redis(f"redis://127.0.0.1:{free_port()}/0")
    try:
        check = WebhookVerifier([secret], down, "down:")
        with pytest.raises(ReplayStoreUnavailableError) as error:
            await check.verify(_headers(secret), BODY)
    finally:
        await down.aclose()
    assert error.value.status == 503
    assert error.value.response_headers() == {"Retry-After": "5"}


def test_a_zero_tolerance_is_refused(redis: Redis) -> None:
    with pytest.raises(ValueError, match="tolerance"):
        WebhookVerifier([generate_secret()], redis, "x:", tolerance_seconds=0)


def test_webhook_secrets_are_redacted_from_logs_under_any_key() -> None:
    secret = generate_secret()
    logged = redact({"endpoint": {"note": f"created with {secret}"}, "secret": secret})
    assert secret not in str(logged)
