"""SEC-WEBHOOKS, SSRF: a webhook URL that is, or resolves to, an internal address is refused when
it is registered (422 naming `url`) and again when a delivery is sent (dead-lettered at once,
nothing reaches the listener). This module's worker runs without WEBHOOK_ALLOWED_NETWORKS."""

from __future__ import annotations

import asyncio
import ipaddress
import time
import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.db.tenancy import TENANT_SETTING
from app.dev.services import ServiceUrls
from app.main import create_app
from app.outbound.destinations import DestinationGuard, ForbiddenDestinationError
from app.settings import ConfigError, Settings, load_settings
from app.tenants.service import NewTenant
from app.webhooks.delivery import Delivery, DeliveryFailedError, send
from app.webhooks.sealing import seal, sealing_key
from app.webhooks.signing import generate_secret
from tests.notes.test_notes_api import auth, fresh_key
from tests.webhooks.receiver import receiver
from tests.webhooks.test_deliveries import create_note, dead_letter_for
from tests.worker.output import ProcessOutput

PATH = "/api/v1/webhook-endpoints"
# The targets of issue #19, and the rest of the internal space in the forms a URL can spell it.
INTERNAL_URLS = [
    "http://127.0.0.1:8080/hooks",
    "http://localhost/hooks",  # a name that resolves to loopback
    "http://LOCALHOST:9000/x",
    "http://[::1]/hooks",
    "http://0.0.0.0/",
    "http://169.254.169.254/latest/meta-data/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://127.1/",
    "http://[::ffff:127.0.0.1]/",
    "http://127.0.0.1:6379/",  # the Redis port
    "https://10.0.0.5/",
    "https://172.16.0.1/",
    "https://192.168.1.1/",
    "https://100.64.0.1/",
    "https://[fd00::1]/",
    "https://[fe80::1]/",
    "https://224.0.0.1/",
    "https://[64:ff9b::7f00:1]/",
    "https://[2002:a9fe:a9fe::1]/",
]
SET_TENANT = text("SELECT set_config(:name, :tenant, true)")
INSERT = text(
    "INSERT INTO webhook_endpoints (tenant_id, url, secret) VALUES (:t, :url, :secret) RETURNING id"
)


@pytest.fixture(scope="module")
def worker_extra_env() -> dict[str, str]:
    """This module's worker has no WEBHOOK_ALLOWED_NETWORKS, as in production."""
    return {}


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_internal_urls_are_refused_at_registration(
    client: TestClient, new_tenant: Callable[[], NewTenant], url: str
) -> None:
    """A 422 problem that names the `url` field, and nothing stored."""
    tenant = new_tenant()
    response = client.post(PATH, json={"url": url}, headers=fresh_key(tenant))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert [error["loc"] for error in problem["errors"]] == ["body.url"]
    assert "internal" in problem["detail"]
    assert client.get(PATH, headers=auth(tenant)).json()["items"] == []


def _store_endpoint(urls: ServiceUrls, settings: Settings, tenant: NewTenant, url: str) -> str:
    """Write an endpoint row directly, as a bug or an old release could have: the API would
    refuse this URL."""
    secret = seal(
        sealing_key(settings.secret_key.get_secret_value()), tenant.tenant_id, generate_secret()
    )

    async def insert() -> str:
        engine = create_async_engine(urls.runtime_database_url)
        try:
            async with engine.begin() as conn:
                tenant_id = str(tenant.tenant_id)
                await conn.execute(SET_TENANT, {"name": TENANT_SETTING, "tenant": tenant_id})
                row = {"t": tenant.tenant_id, "url": url, "secret": secret}
                return str(await conn.scalar(INSERT, row))
        finally:
            await engine.dispose()

    return asyncio.run(insert())


def test_a_stored_loopback_url_is_refused_at_delivery_and_dead_lettered_at_once(
    worker: ProcessOutput,
    worker_env: dict[str, str],
    worker_settings: Settings,
    make_settings: Callable[..., Settings],
    new_tenant: Callable[[], NewTenant],
    service_urls: ServiceUrls,
) -> None:
    """The same loopback receiver the delivery tests opt in to, by address and by a name that
    resolves to it: without WEBHOOK_ALLOWED_NETWORKS the worker never POSTs to it, and the
    refusal is permanent (one attempt, no retries)."""
    tenant = new_tenant()
    with receiver() as inbound:
        by_name = inbound.url.replace("127.0.0.1", "localhost")
        endpoint_ids = [
            _store_endpoint(service_urls, worker_settings, tenant, url)
            for url in (inbound.url, by_name)
        ]
        settings = make_settings(task_queue=worker_env["TASK_QUEUE"])
        with TestClient(create_app(settings)) as client:
            create_note(client, tenant, "for an internal url")
            letters = [dead_letter_for(worker_settings, id_) for id_ in endpoint_ids]
        time.sleep(0.5)  # room for a stray delivery to show up
        assert inbound.deliveries == []
    for letter in letters:
        assert letter["exception_type"] == "ForbiddenDestinationError"
        assert letter["attempts"] == 1
        assert "loopback" in letter["message"]


def _delivery(url: str) -> Delivery:
    return Delivery(url, generate_secret(), f"msg_{uuid.uuid4().hex}", b"{}")


async def test_send_refuses_a_loopback_receiver_unless_its_network_is_allowed() -> None:
    """The guard is at the connection: the same URL is refused, then delivered once allowed."""
    loopback = DestinationGuard((ipaddress.ip_network("127.0.0.1/32"),))
    with receiver() as inbound:
        with pytest.raises(ForbiddenDestinationError):
            await send(_delivery(inbound.url), DestinationGuard())
        assert inbound.deliveries == []
        assert await send(_delivery(inbound.url), loopback) == 204
        assert len(inbound.deliveries) == 1


async def test_redirects_are_not_followed() -> None:
    """A 3xx is a failed delivery: its Location, allowed or not, is never called."""
    loopback = DestinationGuard((ipaddress.ip_network("127.0.0.1/32"),))
    with receiver() as elsewhere, receiver() as redirecting:
        redirecting.location = elsewhere.url
        redirecting.fail_with(307)
        with pytest.raises(DeliveryFailedError, match="307"):
            await send(_delivery(redirecting.url), loopback)
        assert len(redirecting.deliveries) == 1
        assert elsewhere.deliveries == []


def test_production_refuses_allowed_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    """WEBHOOK_ALLOWED_NETWORKS is for development and tests: production names it as a problem."""
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert "production" in error.value.problems["WEBHOOK_ALLOWED_NETWORKS"]


def test_a_malformed_network_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "test")
    monkeypatch.setenv("WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8, not-a-network")
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert set(error.value.problems) == {"WEBHOOK_ALLOWED_NETWORKS"}
    assert "not-a-network" not in str(error.value)
