"""SEC-WEBHOOKS outbound, with the real API, outbox, worker and a loopback receiver: a new note
reaches its tenant's endpoints signed; retries keep the webhook-id; failures are dead-lettered."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import standardwebhooks
from fastapi.testclient import TestClient

from app.cache.connections import create_redis
from app.dev.services import ServiceUrls
from app.main import create_app
from app.settings import Settings
from app.tenants.service import NewTenant
from app.webhooks.verify import WebhookVerifier
from app.worker import operations
from tests.notes.test_notes_api import fresh_key
from tests.webhooks.conftest import LOOPBACK
from tests.webhooks.receiver import Delivery, receiver
from tests.worker.output import ProcessOutput

PATH = "/api/v1/webhook-endpoints"


@pytest.fixture
def client(
    worker: ProcessOutput,
    make_settings: Callable[..., Settings],
    worker_env: dict[str, str],
) -> Iterator[TestClient]:
    """An app whose outbox relay publishes to the running worker's queue, and which accepts the
    loopback receivers of these tests (like the worker, see conftest.py)."""
    settings = make_settings(task_queue=worker_env["TASK_QUEUE"], webhook_allowed_networks=LOOPBACK)
    with TestClient(create_app(settings)) as client:
        yield client


def _register(client: TestClient, tenant: NewTenant, url: str) -> dict[str, Any]:
    response = client.post(PATH, json={"url": url}, headers=fresh_key(tenant))
    assert response.status_code == 201, response.text
    return dict(response.json())


def create_note(client: TestClient, tenant: NewTenant, title: str) -> dict[str, Any]:
    response = client.post("/api/v1/notes", json={"title": title}, headers=fresh_key(tenant))
    assert response.status_code == 201, response.text
    return dict(response.json())


def _independent_signature(secret: str, delivery: Delivery) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = "{}.{}.".format(
        delivery.headers["webhook-id"], delivery.headers["webhook-timestamp"]
    ).encode()
    digest = hmac.new(key, signed + delivery.body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _our_verifier_accepts(redis_url: str, secret: str, delivery: Delivery) -> str:
    async def check() -> str:
        redis = create_redis(redis_url)
        try:
            namespace = f"test-{uuid.uuid4().hex[:12]}:seen:"
            return await WebhookVerifier([secret], redis, namespace).verify(
                delivery.headers, delivery.body
            )
        finally:
            await redis.aclose()

    return asyncio.run(check())


def test_a_new_note_is_delivered_signed_to_its_tenants_endpoint_only(
    client: TestClient, new_tenant: Callable[[], NewTenant], service_urls: ServiceUrls
) -> None:
    alice, bob = new_tenant(), new_tenant()
    with receiver() as alice_in, receiver() as bob_in:
        secret = _register(client, alice, alice_in.url)["secret"]
        _register(client, bob, bob_in.url)
        note = create_note(client, alice, "for alice's receiver")
        [delivery] = alice_in.wait_for(1)
        time.sleep(1.0)  # room for a stray delivery to show up
        assert len(alice_in.deliveries) == 1
        assert bob_in.deliveries == []
    headers = delivery.headers
    assert headers["content-type"] == "application/json"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    assert headers["webhook-signature"] == _independent_signature(secret, delivery)
    assert _our_verifier_accepts(service_urls.redis_url, secret, delivery) == headers["webhook-id"]
    payload = standardwebhooks.Webhook(secret).verify(delivery.body, headers)
    assert payload["type"] == "note.created"
    assert payload["data"]["id"] == note["id"]
    assert payload["data"]["title"] == "for alice's receiver"


def test_a_failing_receiver_gets_the_same_webhook_id_on_every_retry(
    client: TestClient, new_tenant: Callable[[], NewTenant]
) -> None:
    """Two failures (500, then 503), then success: three attempts, one webhook-id, each attempt
    signed for its own timestamp."""
    tenant = new_tenant()
    with receiver() as inbound:
        inbound.fail_with(500, 503)
        secret = _register(client, tenant, inbound.url)["secret"]
        create_note(client, tenant, "retried")
        deliveries = inbound.wait_for(3)
        time.sleep(1.0)
        assert len(inbound.deliveries) == 3  # the third succeeded: no fourth attempt
    assert len({d.headers["webhook-id"] for d in deliveries}) == 1
    assert len({d.body for d in deliveries}) == 1
    for delivery in deliveries:
        assert delivery.headers["webhook-signature"] == _independent_signature(secret, delivery)


def test_a_receiver_that_keeps_failing_is_dead_lettered(
    client: TestClient, new_tenant: Callable[[], NewTenant], worker_settings: Settings
) -> None:
    """1 + TASK_MAX_RETRIES attempts (3 in these tests), then the dead-letter store."""
    tenant = new_tenant()
    with receiver() as inbound:
        inbound.fail_with(500, 500, 500)
        endpoint_id = _register(client, tenant, inbound.url)["id"]
        create_note(client, tenant, "never delivered")
        inbound.wait_for(3)
        letter = dead_letter_for(worker_settings, endpoint_id)
    assert letter["exception_type"] == "DeliveryFailedError"
    assert letter["attempts"] == 3
    assert "500" in letter["message"]


def dead_letter_for(settings: Settings, endpoint_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in operations.dlq_list(settings, as_json=True):
            letter = json.loads(line)
            if letter["task_name"] == "webhooks.deliver" and letter["args"][0] == endpoint_id:
                return dict(letter)
        time.sleep(0.2)
    raise AssertionError("the delivery never reached the dead-letter store")
