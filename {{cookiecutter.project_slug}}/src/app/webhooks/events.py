"""Queue an event for every active endpoint of a tenant, in the caller's transaction (outbox).

The body is serialised once, here, and travels as a string: every attempt sends, and signs, the
same bytes. The `webhook-id` is made here too, so it is the same on every retry and receivers can
dedupe with it; each endpoint gets its own id.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from app.db.session import Executor
from app.webhooks import repository
from app.worker.outbox import enqueue

DELIVER_WEBHOOK = "webhooks.deliver"


def event_body(event_type: str, data: dict[str, Any]) -> str:
    """The Standard Webhooks payload shape: type, timestamp, data."""
    payload = {"type": event_type, "timestamp": datetime.now(UTC).isoformat(), "data": data}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


async def queue_event(
    session: Executor, tenant_id: uuid.UUID, event_type: str, data: dict[str, Any]
) -> int:
    """Queue one delivery per active endpoint; returns how many. Commits with the caller."""
    endpoint_ids = await repository.active_ids(session, tenant_id)
    if not endpoint_ids:
        return 0
    body = event_body(event_type, data)
    for endpoint_id in endpoint_ids:
        webhook_id = f"msg_{uuid.uuid4().hex}"
        await enqueue(session, tenant_id, DELIVER_WEBHOOK, str(endpoint_id), webhook_id, body)
    return len(endpoint_ids)
