"""The client's IP address, trusting `X-Forwarded-For` only from configured proxies.

Walks the forwarded chain from the right, skipping trusted proxies, and takes the first address
that is not one: a client can prepend anything it likes, but cannot forge what our own proxies
appended. With no trusted proxies the header is ignored and the TCP peer is the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import Scope

from app.settings import IPNetwork


def _is_trusted(address: str, trusted: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
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
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return str(peer)  # garbage in the chain: fall back to the proxy we know
    return str(peer)
