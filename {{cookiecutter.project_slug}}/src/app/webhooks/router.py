"""HTTP routes of webhook endpoints: create (secret shown once), list (no secrets), delete."""

from __future__ import annotations

import uuid
from dataclasses import replace

from fastapi import APIRouter, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncConnection

from app.auth.principal import CurrentPrincipal
from app.http.api_contract import operation_link, retry_link
from app.idempotency.keys import IdempotencyKeyDep, idempotent_post_responses
from app.idempotency.store import IdempotencyDep, StoredResponse, json_response
from app.webhooks.schemas import (
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointList,
    WebhookEndpointOut,
)
from app.webhooks.service import webhooks_service

router = APIRouter(prefix="/api/v1/webhook-endpoints", tags=["webhooks"])
# The create answer holds a secret: no cache, shared or private, may keep it.
NO_STORE = {"Cache-Control": "no-store"}
DELETE_LINK = operation_link(
    "/api/v1/webhook-endpoints/{endpoint_id}",
    "delete",
    "Delete the endpoint",
    {"path.endpoint_id": "$response.body#/id"},
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookEndpointCreated,
    responses={
        **idempotent_post_responses(
            "Invalid URL, an internal or unresolvable destination, or too many endpoints"
        ),
        201: {
            "description": "Created",
            "links": {"DeleteEndpoint": DELETE_LINK, "Retry": retry_link(router.prefix)},
        },
    },
)
async def create_webhook_endpoint(
    payload: WebhookEndpointCreate,
    principal: CurrentPrincipal,
    idempotent_request: IdempotencyKeyDep,
    idempotency: IdempotencyDep,
    request: Request,
) -> Response:
    """Register a URL for the tenant's events. The answer carries the signing secret, the only
    time it is shown (a retry with the same `Idempotency-Key` replays that answer). A URL whose
    host is, or resolves to, an internal address is refused with a 422 naming `url`."""
    webhooks = webhooks_service(request)
    # Before the transaction: the DNS lookup must not hold a database connection.
    await webhooks.check_destination(payload.url)

    async def work(session: AsyncConnection) -> StoredResponse:
        created = await webhooks.create_in(session, principal, payload)
        answer = created.model_dump_json().encode()
        # The record keeps the answer without its secret; a replay unseals it from the endpoint.
        kept = created.model_dump_json(exclude={"secret"}).encode()
        return json_response(status.HTTP_201_CREATED, answer, NO_STORE, kept_body=kept)

    async def revive(session: AsyncConnection, stored: StoredResponse) -> StoredResponse | None:
        endpoint = WebhookEndpointOut.model_validate_json(stored.body)
        secret = await webhooks.secret_in(session, principal, endpoint.id)
        if secret is None:
            return None
        created = WebhookEndpointCreated(**endpoint.model_dump(), secret=secret)
        return replace(stored, body=created.model_dump_json().encode())

    return await idempotency.run(principal, idempotent_request, work, revive)


@router.get("", response_model=WebhookEndpointList)
async def list_webhook_endpoints(
    principal: CurrentPrincipal, request: Request
) -> WebhookEndpointList:
    """The tenant's endpoints, oldest first, without their secrets."""
    return await webhooks_service(request).list(principal)


@router.delete(
    "/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"description": "No such endpoint for this tenant"}},
)
async def delete_webhook_endpoint(
    endpoint_id: uuid.UUID, principal: CurrentPrincipal, request: Request
) -> Response:
    """Delete the endpoint and its secret; deliveries still queued for it are dropped."""
    await webhooks_service(request).delete(principal, endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
