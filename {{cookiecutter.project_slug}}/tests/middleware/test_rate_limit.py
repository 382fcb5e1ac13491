"""REL-RATELIMIT: per IP, per principal and per route limits in Redis, with Retry-After."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth.api_keys import parse_key
from app.cache.connections import LeanRedis
from app.dev.services import ServiceUrls
from app.http.client_ip import client_ip
from app.main import create_app
from app.middleware import rate_limit
from app.middleware.rate_limit import QUOTA_EXCEEDED, RateLimitMiddleware, api_key_identity
from app.middleware.rate_limits import RateCounter, route_rate_limit
from app.settings import ConfigError, Settings, load_settings
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


def test_re_spelling_the_authorization_header_keeps_the_spent_quota(
    make_settings: Callable[..., Settings], new_tenant: Callable[[], NewTenant]
) -> None:
    """Once a key's quota is spent, `bearer`, `BEARER` or a doubled space do not reset it."""
    app = create_app(make_settings(rate_limit_per_principal="2/minute"))
    key = new_tenant().api_key
    spellings = [f"Bearer {key}", f"Bearer {key}", f"bearer {key}", f"BEARER {key}"]
    spellings.append(f"Bearer  {key}")
    with _client(app) as client:
        statuses = [
            client.get("/api/v1/notes", headers={"Authorization": spelling}).status_code
            for spelling in spellings
        ]
    assert statuses == [200, 200, 429, 429, 429]


def test_the_principal_bucket_is_the_key_id_and_never_the_secret(
    new_tenant: Callable[[], NewTenant],
) -> None:
    """The bucket names the key id; the secret, or its stored hash, never appears in Redis."""
    key = new_tenant().api_key
    key_id, secret_hash = parse_key(key) or pytest.fail("the issued key does not parse")
    identity = api_key_identity(key.encode())
    assert identity is not None
    assert identity.startswith(f"key:{key_id.hex}:")
    assert key.rsplit("_", 1)[1] not in identity
    assert secret_hash.hex() not in identity
    assert api_key_identity(b"ak_not-a-key") is None


def test_the_parsed_credential_memo_stays_bounded(
    monkeypatch: pytest.MonkeyPatch, service_urls: ServiceUrls
) -> None:
    """A flood of distinct junk credentials cannot grow the middleware's memory without end."""
    monkeypatch.setattr(rate_limit, "PRINCIPAL_MEMO_ENTRIES", 8)
    counter = RateCounter(LeanRedis(service_urls.redis_url), "t:")
    middleware = RateLimitMiddleware(
        FastAPI(), counter, "1/second", "1/second", [], "https://support.example/"
    )
    for i in range(100):
        scope = {"headers": [(b"authorization", f"Bearer junk-{i}".encode())]}
        assert middleware._principal(scope) is None
    assert len(middleware._principals) <= 8


def _statuses_from(app: FastAPI, addresses: list[str]) -> list[int]:
    statuses = []
    for address in addresses:
        with _client(app, ip=address) as client:
            statuses.append(client.get("/api/v1/notes/x").status_code)
    return statuses


def test_ipv6_addresses_of_one_64_share_a_bucket(make_settings: Callable[..., Settings]) -> None:
    """Rotating addresses inside one /64 does not buy quota; another /64 has its own bucket."""
    app = create_app(make_settings(rate_limit_per_ip="3/minute"))
    same_64 = [f"2001:db8:7:1::{suffix}" for suffix in ("1", "2", "ab:cd", "ffff:1:2")]
    assert _statuses_from(app, [*same_64, "2001:db8:7:2::1"]) == [401, 401, 401, 429, 401]


def test_the_ipv6_prefix_is_configurable(make_settings: Callable[..., Settings]) -> None:
    """With RATE_LIMIT_IPV6_PREFIX=48, two /64s of one /48 share a bucket; /128 splits them."""
    wide = create_app(make_settings(rate_limit_per_ip="1/minute", rate_limit_ipv6_prefix=48))
    assert _statuses_from(wide, ["2001:db8:9:1::1", "2001:db8:9:2::1"]) == [401, 429]
    exact = create_app(make_settings(rate_limit_per_ip="1/minute", rate_limit_ipv6_prefix=128))
    assert _statuses_from(exact, ["2001:db8:9:1::1", "2001:db8:9:1::2"]) == [401, 401]


@pytest.mark.parametrize("prefix", ["16", "129", "64.5", "wide"])
def test_an_ipv6_prefix_outside_32_to_128_stops_the_process(
    monkeypatch: pytest.MonkeyPatch, prefix: str
) -> None:
    """RATE_LIMIT_IPV6_PREFIX must be a whole number of bits from 32 to 128, and is named."""
    monkeypatch.setenv("RATE_LIMIT_IPV6_PREFIX", prefix)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "RATE_LIMIT_IPV6_PREFIX" in caught.value.problems


def test_an_ipv4_mapped_address_shares_the_ipv4_bucket(
    make_settings: Callable[..., Settings],
) -> None:
    """`::ffff:2.2.2.2` (a dual-stack socket's view of 2.2.2.2) is limited as 2.2.2.2."""
    app = create_app(make_settings(rate_limit_per_ip="1/minute"))
    assert _statuses_from(app, ["2.2.2.2", "::ffff:2.2.2.2"]) == [401, 429]


def test_a_trusted_proxy_on_a_dual_stack_socket_is_still_trusted(
    make_settings: Callable[..., Settings],
) -> None:
    """A proxy in 10.0.0.0/8 seen as `::ffff:10.1.2.3` forwards each client to its own bucket."""
    settings = make_settings(rate_limit_per_ip="1/minute", trusted_proxies="10.0.0.0/8")
    app = create_app(settings)
    with _client(app, ip="::ffff:10.1.2.3") as proxy:
        statuses = [
            proxy.get("/api/v1/notes/x", headers={"X-Forwarded-For": client}).status_code
            for client in ("198.51.100.1", "198.51.100.2", "::ffff:198.51.100.1")
        ]
    assert statuses == [401, 401, 429]


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
    """Without Redis requests are still served; 30 fail-open requests log one warning, not 30."""
    app = create_app(make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    log_lines()
    with _client(app) as client:
        responses = [client.get("/api/v1/notes/x") for _ in range(30)]
    assert {response.status_code for response in responses} == {401}
    assert all("ratelimit" not in response.headers for response in responses)
    events = [line for line in log_lines() if line["event"] == "rate_limit_unavailable"]
    assert [(event["fail_open"], event.get("suppressed")) for event in events] == [(True, 0)]


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.9", "1.2.3.4", "203.0.113.9"),
        ("10.0.0.2", "1.2.3.4", "1.2.3.4"),
        ("10.0.0.2", "9.9.9.9, 1.2.3.4, 10.0.0.3", "1.2.3.4"),
        ("10.0.0.2", "10.0.0.5", "10.0.0.2"),
        ("10.0.0.2", "not-an-ip", "10.0.0.2"),
        ("::ffff:10.0.0.2", "1.2.3.4", "1.2.3.4"),
        ("10.0.0.2", "1.2.3.4, ::ffff:10.0.0.3", "1.2.3.4"),
        ("10.0.0.2", "::ffff:1.2.3.4", "1.2.3.4"),
    ],
)
def test_client_ip_walks_the_chain_from_the_right(peer: str, forwarded: str, expected: str) -> None:
    """Only hops appended by trusted proxies are skipped; the first untrusted hop is the client."""
    scope = {"client": (peer, 1), "headers": [(b"x-forwarded-for", forwarded.encode())]}
    assert client_ip(scope, [ipaddress.ip_network("10.0.0.0/8")]) == expected
