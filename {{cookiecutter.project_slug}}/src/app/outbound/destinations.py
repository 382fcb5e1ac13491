"""Refuse connections to internal networks (SSRF), and connect to the very address checked.

A URL a user gives us (a webhook endpoint) must not make this service call its own network:
loopback, RFC 1918 and ULA ranges, link-local (the cloud metadata service at 169.254.169.254),
CGNAT, multicast, unspecified and reserved space, and the IPv6 forms that embed such an IPv4
address (IPv4-mapped, 6to4, NAT64, Teredo). The host is resolved once; if ANY of its addresses is
internal the name is refused, otherwise the TCP connection is opened to one of those checked
addresses, so a DNS answer that changes in between (rebinding) is never used. The URL, the Host
header and TLS (SNI and certificate checks) keep the name.

The check sits in an httpcore network backend, the documented hook for name resolution
(encode/httpcore#699): every connection the client opens passes it, whatever the URL says, and
no maintained library does this for httpx. `WEBHOOK_ALLOWED_NETWORKS` exempts networks for
development and tests; production refuses that setting (settings.py).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import anyio
import httpcore2
import httpx2

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

# Internal space that `ipaddress` does not flag on every Python version.
_ALSO_INTERNAL = {
    ipaddress.ip_network("100.64.0.0/10"): "shared (CGNAT)",  # RFC 6598
    ipaddress.ip_network("192.0.0.0/24"): "IETF protocol assignment",  # RFC 6890
    ipaddress.ip_network("64:ff9b:1::/48"): "local-use NAT64",  # RFC 8215
}
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the last 32 bits


class ForbiddenDestinationError(Exception):
    """The host is, or resolves to, an internal address: refused, never worth a retry."""

    def __init__(self, host: str, address: IPAddress, kind: str) -> None:
        super().__init__(
            f"destination {host} resolves to {address}, a {kind} address: refused "
            "(internal networks are reachable only through WEBHOOK_ALLOWED_NETWORKS)"
        )
        self.host = host
        self.address = address
        self.kind = kind


class UnresolvedDestinationError(Exception):
    """The host has no address now; `temporary` when the resolver said to try again."""

    def __init__(self, host: str, temporary: bool) -> None:
        super().__init__(f"destination {host} did not resolve")
        self.host = host
        self.temporary = temporary


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo client, NAT64), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return None


def internal_kind(address: IPAddress) -> str | None:
    """What makes `address` internal ("loopback", "private", ...), or None for a public one."""
    embedded = embedded_ipv4(address)
    if embedded is not None:
        if (kind := internal_kind(embedded)) is not None:
            return f"{kind} (embedded in IPv6)"
        if address in _MAPPED or address in _NAT64:
            return None  # only another spelling of a public IPv4 address (DNS64 answers so)
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("site-local", isinstance(address, ipaddress.IPv6Address) and address.is_site_local),
    )
    kind = next((name for name, hit in checks if hit), None)
    kind = kind or next((name for net, name in _ALSO_INTERNAL.items() if address in net), None)
    # Whatever the lists above miss (new special-purpose ranges), is_global still excludes.
    return kind or (None if address.is_global else "non-global")


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """getaddrinfo on the event loop's executor: every address of `host`, in its order."""
    answers = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(answer[4][0]) for answer in answers))


@dataclass(frozen=True)
class DestinationGuard:
    """Which destinations may be called: public addresses, plus `allowed_networks`."""

    allowed_networks: tuple[IPNetwork, ...] = ()
    resolver: Resolver = system_resolver

    def refusal(self, address: IPAddress) -> str | None:
        """Why `address` is refused (its kind), or None when it may be called."""
        kind = internal_kind(address)
        if kind is None:
            return None
        candidates = [address, embedded_ipv4(address)]
        allowed = any(ip in net for ip in candidates if ip for net in self.allowed_networks)
        return None if allowed else kind

    async def checked_addresses(
        self, host: str, port: int, resolve_seconds: float
    ) -> list[IPAddress]:
        """Resolve `host` once; its addresses when every one may be called.

        Raises ForbiddenDestinationError if any address is refused, UnresolvedDestinationError
        when there is none (or the resolver took longer than `resolve_seconds`).
        """
        name = host.strip("[]")
        try:
            with anyio.fail_after(resolve_seconds):
                addresses = await self.resolver(name, port)
        except socket.gaierror as error:
            raise UnresolvedDestinationError(name, error.errno == socket.EAI_AGAIN) from None
        except (TimeoutError, OSError):
            raise UnresolvedDestinationError(name, temporary=True) from None
        if not addresses:
            raise UnresolvedDestinationError(name, temporary=False)
        for address in addresses:
            if (kind := self.refusal(address)) is not None:
                raise ForbiddenDestinationError(name, address, kind)
        return addresses


class GuardedNetworkBackend(httpcore2.AsyncNetworkBackend):
    """Resolves and checks each host with a DestinationGuard, then connects to a checked address
    (the next one if a connection is refused)."""

    def __init__(self, guard: DestinationGuard, inner: httpcore2.AsyncNetworkBackend) -> None:
        self._guard = guard
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        deadline = time.monotonic() + (timeout or 30.0)
        try:
            addresses = await self._guard.checked_addresses(host, port, timeout or 30.0)
        except UnresolvedDestinationError as error:
            raise httpcore2.ConnectError(str(error)) from error
        return await self._connect_first(addresses, port, deadline, local_address, socket_options)

    async def _connect_first(
        self,
        addresses: Sequence[IPAddress],
        port: int,
        deadline: float,
        local_address: str | None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None,
    ) -> httpcore2.AsyncNetworkStream:
        failure = httpcore2.ConnectError("no address to connect to")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),  # an IP literal: the inner backend resolves nothing
                    port,
                    timeout=max(0.001, deadline - time.monotonic()),
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore2.ConnectError as error:
                failure = error
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend interface
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise httpcore2.ConnectError("unix sockets are not a destination for guarded clients")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx2.AsyncHTTPTransport):
    """httpx2's transport whose every connection passes a DestinationGuard. TLS still verifies
    the certificate for the URL's name, sent as SNI. Environment proxies are not used (a proxy
    would resolve the name itself)."""

    def __init__(
        self,
        guard: DestinationGuard,
        max_connections: int = 100,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        limits = httpx2.Limits(
            max_connections=max_connections,
            max_keepalive_connections=min(20, max_connections),
        )
        ssl_context = ssl_context or httpx2.create_ssl_context()
        super().__init__(verify=ssl_context, limits=limits)
        # AsyncHTTPTransport does not take a network backend yet (encode/httpx#3749, open), so
        # its pool is replaced by one built with ours; the guard tests fail if this stops working.
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedNetworkBackend(guard, httpcore2.AnyIOBackend()),
        )
