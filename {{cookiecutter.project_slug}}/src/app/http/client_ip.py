"""The client's IP address, trusting `X-Forwarded-For` only from configured proxies.

Walks the forwarded chain from the right, skipping trusted proxies, and takes the first address
that is not one: a client can prepend anything it likes, but cannot forge what our own proxies
appended. With no trusted proxies the header is ignored and the TCP peer is the client.

An IPv4-mapped IPv6 address (`::ffff:10.1.2.3`, how a dual-stack socket shows an IPv4 peer) is
the IPv4 address it maps, both for the trusted-proxy check and for rate limiting.
`rate_limit_identity` buckets IPv6 clients by network: one host is handed a whole /64, so
counting per address would give it 2^64 buckets.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence

from starlette.types import Scope

from app.settings import IPNetwork

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _unmapped(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _is_trusted(address: str, trusted: Sequence[IPNetwork]) -> bool:
    try:
        ip = _unmapped(ipaddress.ip_address(address))
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_ip(scope: Scope, trusted: Sequence[IPNetwork]) -> str:
    """The address to rate-limit and log as the client."""
    peer = scope["client"][0] if scope.get("client") else "unknown"
    if not trusted or not _is_trusted(peer, trusted):
        return str(peer)
    forwarded = b",".join(v for k, v in scope["headers"] if k == b"x-forwarded-for").decode(
        "latin-1"
    )
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            try:
                return str(_unmapped(ipaddress.ip_address(hop)))
            except ValueError:
                return str(peer)  # garbage in the chain: fall back to the proxy we know
    return str(peer)


@functools.lru_cache(maxsize=4096)
def _ipv6_identity(address: str, prefix: int) -> str:
    # Memoised: parsing costs several microseconds, and a busy client sends from one address.
    try:
        ip = ipaddress.IPv6Address(address)
    except ValueError:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    host_bits = 128 - prefix
    return f"{ipaddress.IPv6Address(int(ip) >> host_bits << host_bits)}/{prefix}"


def rate_limit_identity(address: str, ipv6_prefix: int) -> str:
    """Whose IP quota `address` spends: an IPv4 address its own, an IPv6 address its network's.

    `2001:db8:7:1::2` with prefix 64 → `2001:db8:7:1::/64`; `::ffff:2.2.2.2` → `2.2.2.2`.
    """
    if ":" not in address:  # IPv4 (or "unknown"): no parsing on the common path
        return address
    return _ipv6_identity(address, ipv6_prefix)
