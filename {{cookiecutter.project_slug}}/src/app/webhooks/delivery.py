"""One delivery attempt: sign with a fresh timestamp and POST through an OutboundClient.

Clients are kept per receiver origin, so one failing receiver opens only its own breaker. The
task policy does the retrying (`max_retries=0` here): each attempt is re-signed with its own
`webhook-timestamp`, as the spec asks, and the `webhook-id` stays the same. Redirects are not
followed (httpx's default): a 3xx is a failed delivery, as the spec says.

Every connection goes through a GuardedTransport (app/outbound/destinations.py): a receiver that
is, or now resolves to, an internal address raises ForbiddenDestinationError before anything is
sent. That error is not transient: the delivery is dead-lettered at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.outbound.client import DependencyUnavailableError, OutboundClient, OutboundDependency
from app.outbound.destinations import DestinationGuard, GuardedTransport
from app.webhooks.signing import delivery_headers
from app.worker.policy import TransientError

MAX_CLIENTS = 64
_clients: dict[tuple[str, DestinationGuard], OutboundClient] = {}


class DeliveryFailedError(TransientError):
    """The receiver answered non-2xx or could not be reached: retried, then dead-lettered."""


@dataclass(frozen=True)
class Delivery:
    url: str
    secret: str
    webhook_id: str
    body: bytes


async def _client_for(url: str, guard: DestinationGuard) -> OutboundClient:
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    client = _clients.get((origin, guard))
    if client is None:
        if len(_clients) >= MAX_CLIENTS:  # bounded: close the oldest receiver's client
            await _clients.pop(next(iter(_clients))).aclose()
        dependency = OutboundDependency(
            name="webhook-receiver",
            base_url=origin,
            connect_timeout=5.0,
            read_timeout=15.0,  # the spec suggests 15 to 30 s
            max_retries=0,
        )
        transport = GuardedTransport(guard, max_connections=10)
        client = _clients[origin, guard] = OutboundClient(dependency, transport)
    return client


async def send(delivery: Delivery, guard: DestinationGuard) -> int:
    """POST once; returns the status of a 2xx or 410, raises DeliveryFailedError otherwise, and
    ForbiddenDestinationError (permanent) when `guard` refuses the receiver's address."""
    headers = {
        "content-type": "application/json",
        **delivery_headers(delivery.secret, delivery.webhook_id, int(time.time()), delivery.body),
    }
    client = await _client_for(delivery.url, guard)
    try:
        response = await client.request(
            "POST", delivery.url, content=delivery.body, headers=headers
        )
    except DependencyUnavailableError as error:
        raise DeliveryFailedError(f"receiver unreachable: {error.detail}") from error
    if 200 <= response.status_code < 300 or response.status_code == 410:
        return response.status_code
    raise DeliveryFailedError(f"receiver answered {response.status_code}")
