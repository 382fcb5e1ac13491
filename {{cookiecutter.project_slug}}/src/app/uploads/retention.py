"""What the retention job does for uploads beyond deleting rows: remove their stored bytes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from app.uploads.settings import UploadSettings
from app.uploads.storage import storage_key
from app.uploads.storage_backends import build_storage


def stored_bytes_remover(settings: UploadSettings) -> Callable[[Sequence[Any]], Awaitable[None]]:
    """Given purged `(tenant_id, id)` rows, delete each upload's stored object."""
    storage = build_storage(settings)

    async def remove(rows: Sequence[Any]) -> None:
        for tenant_id, upload_id in rows:
            await storage.delete(storage_key(tenant_id, upload_id))

    return remove
