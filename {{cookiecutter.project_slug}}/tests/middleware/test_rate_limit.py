"""REL-RATELIMIT: per IP, per principal and per route limits in Redis, with Retry-After."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.client_ip import client_ip
from app.main import create_app
from app.middleware.rate_limit import QUOTA_EXCEEDED
from app.rate_limits import route_rate_limit
from app.settings import Settings
from app.tenants.service import NewTenant
from tests.notes.test_notes_api import auth
from tests.processes import free_port

LogLines = Callable[[], list[dict[str, Any]]]


def _unknown_key() -> str:
    return f"Bearer ak_{uuid.uuid4().hex}_{'x' * 43}"


def _client(app: FastAPI, ip: str = "203.0.113.7") -> TestClient:
    return TestClient(app, raise_server_exceptions=False, client=(ip, 50000))


def test_a_burst_past_the_ip_limit_gets_429_with_retry_after(
    make_settings: Callable[..., Settings],
) -> None:
    """Three requests pass with shrinking RateLimit; the fourth is a 429 quota-exceeded problem."""
    app = create_app(make_settings(rate_limit_per_ip="3/minute"))
    with _client(app) as client:
        passed = [client.get("/api/v1/notes/not-a-uuid") for _ in range(3)]
        blocked = client.get("/api/v1/notes/not-a-uuid")
    assert [r.headers["ratelimit"] for r in passed] == [
        '"ip";r=2;t=60',
        '"ip";r=1;t=60',
        '"ip";r=0;t=60',
    ]
    assert passed[0].headers["ratelimit-policy"] == '"ip";q=3;w=60'
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["retry-after"]) <= 60
    body = blocked.json()
    assert (body["type"], body["violated-policies"]) == (QUOTA_EXCEEDED, ["ip"])
    assert blocked.headers["x-request-id"] == body["correlation_id"]
    assert blocked.headers["x-content-type-options"] == "nosniff"


def test_failed_authentication_counts_against_the_ip(
    make_settings: Callable[..., Settings],
) -> None:
    """Guessing keys burns the IP's quota: after three 401s the next attempt is a 429."""
    app = create_app(make_settings(rate_limit_per_ip="3/minute"))
    with _client(app) as client:
        statuses = [
            client.get(
                "/api/v1/notes",
                headers={"Authorization": f"Bearer ak_{uuid.uuid4().hex}_{'x' * 43}"},
            ).status_code
            for _ in range(4)
        ]
    assert statuses == [401, 401, 401, 429]


def test_each_principal_has_its_own_limit(
    make_settings: Callable[..., Settings], new_tenant: Callable[[], NewTenant]
) -> None:
    """One client exhausting its quota does not block another client on the same IP."""
    app = create_app(make_settings(rate_limit_per_principal="2/minute"))
    first, second = new_tenant(), new_tenant()
    with _client(app) as client:
        own = [client.get("/api/v1/notes", headers=auth(first)).status_code for _ in range(3)]
        other = client.get("/api/v1/notes", headers=auth(second))
    assert own == [200, 200, 429]
    assert other.status_code == 200


def test_a_route_can_declare_a_tighter_limit(make_settings: Callable[..., Settings]) -> None:
    """A route with route_rate_limit("1/minute") blocks the second call; others are unaffected."""
    app = create_app(make_settings())

    @app.get("/expensive", openapi_extra=route_rate_limit("1/minute"))
    async def expensive() -> dict[str, str]:
        return {"ok": "yes"}

    with _client(app) as client:
        first, second = client.get("/expensive"), client.get("/expensive")
        elsewhere = client.get("/api/v1/notes/x")
    assert (first.status_code, second.status_code) == (200, 429)
    assert second.json()["violated-policies"] == ["route"]
    assert elsewhere.status_code == 401


def test_health_endpoints_are_exempt(make_settings: Callable[..., Settings]) -> None:
    """Probes never spend quota and are never limited."""
    app = create_app(make_settings(rate_limit_per_ip="1/minute"))
    with _client(app) as client:
        statuses = {client.get("/health/live").status_code for _ in range(5)}
    assert statuses == {200}


def test_the_limit_is_shared_by_two_app_instances(
    make_settings: Callable[..., Settings],
) -> None:
    """Two replicas on one Redis share the counter: together they allow the quota once."""
    prefix = f"shared-{uuid.uuid4().hex[:8]}:"
    apps = [
        create_app(make_settings(rate_limit_per_ip="4/minute", redis_key_prefix=prefix))
        for _ in range(2)
    ]
    with _client(apps[0]) as one, _client(apps[1]) as two:
        statuses = [client.get("/api/v1/notes/x").status_code for client in (one, two) * 3]
    assert statuses == [401, 401, 401, 401, 429, 429]


def test_forwarded_for_is_ignored_from_untrusted_peers(
    make_settings: Callable[..., Settings],
) -> None:
    """A client rotating X-Forwarded-For values still hits its own (peer) limit."""
    app = create_app(make_settings(rate_limit_per_ip="2/minute"))
    with _client(app) as client:
        statuses = [
            client.get(
                "/api/v1/notes/x", headers={"X-Forwarded-For": f"198.51.100.{i}"}
            ).status_code
            for i in range(3)
        ]
    assert statuses == [401, 401, 429]


def test_forwarded_for_from_a_trusted_proxy_identifies_clients(
    make_settings: Callable[..., Settings],
) -> None:
    """Behind a trusted proxy each forwarded client gets its own bucket."""
    settings = make_settings(rate_limit_per_ip="1/minute", trusted_proxies="10.0.0.0/8")
    app = create_app(settings)
    with _client(app, ip="10.1.2.3") as proxy:
        first = proxy.get("/api/v1/notes/x", headers={"X-Forwarded-For": "198.51.100.1"})
        second = proxy.get("/api/v1/notes/x", headers={"X-Forwarded-For": "198.51.100.2"})
        again = proxy.get(
            "/api/v1/notes/x", headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.1, 10.9.9.9"}
        )
    assert (first.status_code, second.status_code, again.status_code) == (401, 401, 429)


def test_redis_down_fails_open_and_is_logged(
    make_settings: Callable[..., Settings], log_lines: LogLines
) -> None:
    """Without Redis requests are still served; each miss is logged as fail-open."""
    app = create_app(make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    log_lines()
    with _client(app) as client:
        response = client.get("/api/v1/notes/x")
    assert response.status_code == 401
    assert "ratelimit" not in response.headers
    events = [line for line in log_lines() if line["event"] == "rate_limit_unavailable"]
    assert events
    assert events[0]["fail_open"] is True


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.9", "1.2.3.4", "203.0.113.9"),
        ("10.0.0.2", "1.2.3.4", "1.2.3.4"),
        ("10.0.0.2", "9.9.9.9, 1.2.3.4, 10.0.0.3", "1.2.3.4"),
        ("10.0.0.2", "10.0.0.5", "10.0.0.2"),
        ("10.0.0.2", "not-an-ip", "10.0.0.2"),
    ],
)
def test_client_ip_walks_the_chain_from_the_right(peer: str, forwarded: str, expected: str) -> None:
    """Only hops appended by trusted proxies are skipped; the first untrusted hop is the client."""
    scope = {"client": (peer, 1), "headers": [(b"x-forwarded-for", forwarded.encode())]}
    assert client_ip(scope, [ipaddress.ip_network("10.0.0.0/8")]) == expected
