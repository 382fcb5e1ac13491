"""The scan of a completed upload: clamd decides `clean` or `infected`; nothing else does."""

from __future__ import annotations

import uuid

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from app.observability.logging import get_logger
from app.settings import get_settings
from app.uploads import repository
from app.uploads.models import CLEAN, INFECTED, QUARANTINED
from app.uploads.scanner import ScannerUnavailableError, scan
from app.uploads.storage import storage_key
from app.uploads.storage_backends import build_storage
from app.worker.context import task_tenant
from app.worker.policy import TransientError
from app.worker.runtime import run_async, worker_database
from app.worker.tasks import reliable_task

SCAN_TASK = "uploads.scan"
log = get_logger("app.uploads")
UPLOADS_INFECTED = Counter("uploads_infected_total", "Uploads clamd found infected.")
UPLOADS_SCANNED = Counter("uploads_scanned_total", "Upload scans by verdict.", ["verdict"])


@reliable_task(SCAN_TASK)
def scan_upload(upload_id: str) -> None:
    """Scan a quarantined upload. Scanner down: a transient failure, so retried with backoff and
    then dead-lettered, the upload staying quarantined (never served unscanned)."""
    tenant = task_tenant()
    if tenant is None:
        raise ValueError(f"{SCAN_TASK} needs the tenant header")
    run_async(lambda: _scan(tenant, uuid.UUID(upload_id)))


async def _scan(tenant: uuid.UUID, upload_id: uuid.UUID) -> None:
    settings = get_settings()
    database = worker_database()

    async def load(session: AsyncSession) -> str | None:
        upload = await repository.get(session, tenant, upload_id)
        return None if upload is None else upload.status

    if await database.run(load, tenant) != QUARANTINED:
        return  # terminated meanwhile, or already scanned (a redelivery): nothing to do
    if settings.clamd_address is None:
        raise TransientError("CLAMD_ADDRESS is not set: uploads stay quarantined")
    storage = build_storage(settings)
    key = storage_key(tenant, upload_id)
    try:
        verdict = await scan(settings.clamd_address, storage.read(key), settings.clamd_timeout)
    except ScannerUnavailableError as error:
        raise TransientError(str(error)) from error
    status = CLEAN if verdict.clean else INFECTED

    async def record(session: AsyncSession) -> bool:
        return await repository.mark_scanned(session, tenant, upload_id, status, verdict.signature)

    await database.run(record, tenant)
    UPLOADS_SCANNED.labels(status).inc()
    if not verdict.clean:
        await storage.delete(key)
        UPLOADS_INFECTED.inc()
        log.warning(
            "upload_infected",
            upload_id=str(upload_id),
            tenant_id=str(tenant),
            signature=verdict.signature,
        )
