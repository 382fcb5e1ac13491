"""Webhook endpoints use cases. Raises domain errors; never builds HTTP responses."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.auth.principal import Principal
from app.db.session import Database
from app.http.errors import NotFoundError, UnprocessableError
from app.outbound.destinations import (
    DestinationGuard,
    ForbiddenDestinationError,
    UnresolvedDestinationError,
)
from app.webhooks import repository
from app.webhooks.schemas import (
    EndpointUrl,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointList,
    WebhookEndpointOut,
)
from app.webhooks.sealing import seal, sealing_key, unseal
from app.webhooks.signing import generate_secret

NOT_FOUND = "No webhook endpoint with this id exists."
RESOLVE_TIMEOUT = 5.0  # seconds: a slow resolver is an answer, not a held request


@dataclass(frozen=True)
class WebhooksService:
    database: Database
    # Seals each endpoint secret before it is stored (sealing.py).
    sealing_key: bytes
    destinations: DestinationGuard

    async def check_destination(self, url: EndpointUrl) -> None:
        """Refuse a URL whose host is, or resolves to, an internal address (SSRF). The worker
        checks again at every delivery: what a name resolves to may change after this."""
        try:
            await self.destinations.checked_addresses(
                url.host or "", url.port or 0, RESOLVE_TIMEOUT
            )
        except ForbiddenDestinationError as error:
            # The kind only: naming the address would map the internal DNS for the caller.
            raise _url_problem(
                f"url: the host is or resolves to an internal ({error.kind}) address; webhooks "
                "are delivered to public addresses only."
            ) from None
        except UnresolvedDestinationError as error:
            # A 422 even when the resolver only failed for now: the URL cannot be checked, and
            # a 5xx would blame this service for the host's DNS.
            retry = " just now; try again later" if error.temporary else " to any address"
            raise _url_problem(f"url: the host name could not be resolved{retry}.") from None

    async def create_in(
        self, session: AsyncConnection, principal: Principal, data: WebhookEndpointCreate
    ) -> WebhookEndpointCreated:
        """Create an endpoint with a fresh secret, inside the idempotent POST's transaction."""
        if await repository.count(session, principal.tenant_id) >= repository.MAX_ENDPOINTS:
            raise UnprocessableError(
                f"A tenant may have at most {repository.MAX_ENDPOINTS} webhook endpoints."
            )
        secret = generate_secret()
        sealed = seal(self.sealing_key, principal.tenant_id, secret)
        endpoint = await repository.insert(session, principal.tenant_id, str(data.url), sealed)
        return WebhookEndpointCreated(
            id=endpoint.id,
            url=endpoint.url,
            created_at=endpoint.created_at,
            disabled_at=endpoint.disabled_at,
            secret=secret,
        )

    async def secret_in(
        self, session: AsyncConnection, principal: Principal, endpoint_id: uuid.UUID
    ) -> str | None:
        """The endpoint's secret, unsealed, in the caller's transaction (a replayed create); None
        once the endpoint is deleted."""
        sealed = await repository.sealed_secret(session, principal.tenant_id, endpoint_id)
        if sealed is None:
            return None
        return unseal(self.sealing_key, principal.tenant_id, sealed)

    async def list(self, principal: Principal) -> WebhookEndpointList:
        async def work(session: AsyncSession) -> WebhookEndpointList:
            rows = await repository.list_all(session, principal.tenant_id)
            return WebhookEndpointList(items=[WebhookEndpointOut.model_validate(r) for r in rows])

        return await self.database.run(work, principal.tenant_id)

    async def delete(self, principal: Principal, endpoint_id: uuid.UUID) -> None:
        async def work(session: AsyncSession) -> bool:
            return await repository.remove(session, principal.tenant_id, endpoint_id)

        if not await self.database.run(work, principal.tenant_id):
            raise NotFoundError(NOT_FOUND)


def _url_problem(detail: str) -> UnprocessableError:
    """A 422 naming the `url` field, shaped like the request-validation problems."""
    error = {"loc": "body.url", "msg": detail.removeprefix("url: "), "type": "url_destination"}
    return UnprocessableError(detail, errors=[error])


def webhooks_service(request: Request) -> WebhooksService:
    """The service on the app's database and sealing key: a plain call in each route, not a
    `Depends` (why: `app.notes.service.notes_service`)."""
    key: bytes | None = getattr(request.app.state, "webhook_sealing_key", None)
    if key is None:  # derived once per app: HKDF is cheap, but not free on every request
        secret_key = request.app.state.settings.secret_key.get_secret_value()
        key = request.app.state.webhook_sealing_key = sealing_key(secret_key)
    allowed = tuple(request.app.state.settings.webhook_allowed_networks)
    return WebhooksService(request.app.state.database, key, DestinationGuard(allowed))
