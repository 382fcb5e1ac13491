"""SSRF guard: which addresses are internal, the allow-list, and that a guarded client connects to
the very address it checked (one resolution per connection: no DNS rebinding in between)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from app.outbound.client import OutboundClient, OutboundDependency
from app.outbound.destinations import (
    DestinationGuard,
    ForbiddenDestinationError,
    GuardedTransport,
    IPAddress,
    UnresolvedDestinationError,
    internal_kind,
)
from tests.outbound.flaky_server import FlakyServer, flaky_server

INTERNAL = [
    "127.0.0.1",
    "127.255.0.9",
    "::1",
    "0.0.0.0",  # noqa: S104 - an address under test, not a bind
    "::",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "fd12:3456::1",  # ULA
    "169.254.169.254",  # cloud metadata
    "fe80::1",
    "100.64.0.1",  # CGNAT
    "224.0.0.1",
    "ff02::1",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.0.9",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "::7f00:1",  # IPv4-compatible (deprecated)
    "2002:7f00:1::1",  # 6to4 around 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 around 169.254.169.254
    "64:ff9b::a00:1",  # NAT64 around 10.0.0.1
    "64:ff9b:1::1",  # local-use NAT64
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo
    "fec0::1",  # site-local (deprecated)
]
PUBLIC = [
    "93.184.215.14",
    "8.8.8.8",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",  # what DNS64 answers for 8.8.8.8 on an IPv6-only network
]


def _resolving(*answers: str) -> tuple[list[str], DestinationGuard]:
    """A guard whose resolver answers `answers` and records each name it was asked."""
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[IPAddress]:
        asked.append(host)
        return [ipaddress.ip_address(answer) for answer in answers]

    return asked, DestinationGuard(resolver=resolve)


@pytest.mark.parametrize("address", INTERNAL)
def test_internal_addresses_are_refused(address: str) -> None:
    """Every loopback, private, link-local, CGNAT, multicast, unspecified, reserved address, and
    the IPv6 forms that embed one, is internal."""
    assert internal_kind(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert internal_kind(ipaddress.ip_address(address)) is None


async def test_one_internal_address_among_public_ones_refuses_the_name() -> None:
    """A name answering a public and an internal address could be connected to either."""
    _, guard = _resolving("93.184.215.14", "127.0.0.1")
    with pytest.raises(ForbiddenDestinationError, match="loopback"):
        await guard.checked_addresses("mixed.test", 443, resolve_seconds=1)


async def test_a_name_without_addresses_is_unresolved() -> None:
    _, guard = _resolving()
    with pytest.raises(UnresolvedDestinationError):
        await guard.checked_addresses("nothing.test", 443, resolve_seconds=1)


def test_allowed_networks_exempt_only_their_addresses() -> None:
    """WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8 lets loopback (and its mapped form) through, not the
    rest of the internal space."""
    guard = DestinationGuard((ipaddress.ip_network("127.0.0.0/8"),))
    assert guard.refusal(ipaddress.ip_address("127.0.0.1")) is None
    assert guard.refusal(ipaddress.ip_address("::ffff:127.0.0.1")) is None
    assert guard.refusal(ipaddress.ip_address("10.0.0.1")) == "private"
    assert guard.refusal(ipaddress.ip_address("::1")) == "loopback"


@pytest.fixture
def server() -> Iterator[FlakyServer]:
    with flaky_server() as running:
        yield running


def _client(
    server: FlakyServer, guard: DestinationGuard, host: str = "127.0.0.1"
) -> OutboundClient:
    port = server.url.rsplit(":", 1)[1]
    dependency = OutboundDependency("guarded", f"http://{host}:{port}", max_retries=0)
    return OutboundClient(dependency, transport=GuardedTransport(guard))


async def test_a_guarded_client_never_connects_to_loopback(server: FlakyServer) -> None:
    """Refused before any connection; the breaker does not count a refusal as a failure."""
    client = _client(server, DestinationGuard())
    try:
        for _ in range(6):
            with pytest.raises(ForbiddenDestinationError):
                await client.request("GET", "/thing")
    finally:
        await client.aclose()
    assert server.hits == []
    assert client.breaker.current_state == "closed"


async def test_the_connection_goes_to_the_checked_address_with_the_name_kept(
    server: FlakyServer,
) -> None:
    """The name is resolved once, by the guard: the system resolver (which does not know
    `hooks.rebind.test`) is never asked again, and the Host header still names the host."""
    asked, unguarded = _resolving("127.0.0.1")
    guard = DestinationGuard((ipaddress.ip_network("127.0.0.1/32"),), unguarded.resolver)
    client = _client(server, guard, host="hooks.rebind.test")
    try:
        response = await client.request("GET", "/thing")
    finally:
        await client.aclose()
    assert response.status_code == 200
    assert asked == ["hooks.rebind.test"]
    [(_, _, headers)] = server.hits
    assert headers["Host"].startswith("hooks.rebind.test:")
