"""The `deliver_webhook` task: runs under the tenant that queued it (task headers)."""

from __future__ import annotations

import uuid
from functools import lru_cache

from sqlalchemy.ext.asyncio import AsyncSession

from app.observability.logging import get_logger
from app.outbound.destinations import DestinationGuard, ForbiddenDestinationError
from app.settings import get_settings
from app.webhooks import repository
from app.webhooks.delivery import Delivery, send
from app.webhooks.events import DELIVER_WEBHOOK
from app.webhooks.sealing import sealing_key, unseal
from app.worker.context import task_tenant
from app.worker.runtime import run_async, worker_database
from app.worker.tasks import reliable_task

log = get_logger("app.webhooks")
GONE = 410


@lru_cache(maxsize=1)
def _key() -> bytes:
    """This worker process's key for opening endpoint secrets (derived once)."""
    return sealing_key(get_settings().secret_key.get_secret_value())


@lru_cache(maxsize=1)
def _guard() -> DestinationGuard:
    """Public addresses only, plus WEBHOOK_ALLOWED_NETWORKS (development and tests)."""
    return DestinationGuard(tuple(get_settings().webhook_allowed_networks))


@reliable_task(DELIVER_WEBHOOK)
def deliver_webhook(endpoint_id: str, webhook_id: str, body: str) -> int | None:
    """POST one signed event. Non-2xx and transport errors raise DeliveryFailedError (transient):
    retried by the task policy with the same webhook-id, then dead-lettered. 410 disables the
    endpoint. An endpoint deleted or disabled meanwhile gets nothing. A receiver that is, or now
    resolves to, an internal address gets nothing either: ForbiddenDestinationError is permanent,
    dead-lettered without a retry."""
    tenant = task_tenant()
    if tenant is None:
        raise ValueError("webhooks.deliver needs the tenant header")
    endpoint_uuid = uuid.UUID(endpoint_id)

    async def load(session: AsyncSession) -> Delivery | None:
        endpoint = await repository.get(session, tenant, endpoint_uuid)
        if endpoint is None or endpoint.disabled_at is not None:
            return None
        secret = unseal(_key(), tenant, endpoint.secret)
        return Delivery(endpoint.url, secret, webhook_id, body.encode())

    delivery = run_async(lambda: worker_database().run(load, tenant_id=tenant))
    if delivery is None:
        log.info("webhook_skipped", endpoint_id=endpoint_id, webhook_id=webhook_id)
        return None
    try:
        status = run_async(lambda: send(delivery, _guard()))
    except ForbiddenDestinationError as refused:
        log.warning("webhook_destination_refused", endpoint_id=endpoint_id, reason=str(refused))
        raise
    if status == GONE:

        async def disable(session: AsyncSession) -> None:
            await repository.disable(session, tenant, endpoint_uuid)

        run_async(lambda: worker_database().run(disable, tenant_id=tenant))
        log.warning("webhook_endpoint_disabled", endpoint_id=endpoint_id, status=status)
    else:
        log.info("webhook_delivered", endpoint_id=endpoint_id, webhook_id=webhook_id)
    return status
