"""Background work of the notes feature. Tasks run under the tenant that enqueued them."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.worker.context import task_tenant
from app.worker.runtime import run_async, worker_database
from app.worker.tasks import reliable_task

COUNT_WORDS = "notes.count_words"


@reliable_task(COUNT_WORDS)
def count_words(note_id: str) -> None:
    """Store the note's word count. Idempotent: running it twice stores the same number."""
    tenant = task_tenant()
    if tenant is None:
        raise ValueError("notes.count_words needs the tenant header")

    async def work(session: AsyncSession) -> None:
        await session.execute(
            text(
                "UPDATE notes SET word_count = COALESCE(array_length("
                r"regexp_split_to_array(NULLIF(btrim(body), ''), '\s+'), 1), 0) "
                "WHERE id = :id AND tenant_id = :tenant"
            ),
            {"id": uuid.UUID(note_id), "tenant": tenant},
        )

    run_async(lambda: worker_database().run(work, tenant_id=tenant))
