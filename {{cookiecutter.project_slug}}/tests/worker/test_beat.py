"""Beat schedules the outbox sweep: rows no API process relayed still reach the worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.engine import create_engine
from app.db.session import Database
from app.dev.services import ServiceUrls
from app.notes import repository
from app.notes.tasks import COUNT_WORDS
from app.tenants.service import NewTenant
from app.worker.outbox import enqueue
from tests.processes import start_app
from tests.worker.output import ProcessOutput


@pytest.fixture
def beat(worker_env: dict[str, str], tmp_path: Path) -> Iterator[ProcessOutput]:
    schedule = str(tmp_path / "beat-schedule")
    output = ProcessOutput(start_app(["beat", "--schedule-file", schedule], worker_env))
    yield output
    output.stop()


@pytest.fixture
async def database(service_urls: ServiceUrls) -> AsyncIterator[Database]:
    engine = create_engine(service_urls.runtime_database_url)
    yield Database(engine)
    await engine.dispose()


async def test_beat_relays_what_no_api_process_relayed(
    worker: ProcessOutput,
    beat: ProcessOutput,
    database: Database,
    new_tenant: Callable[[], NewTenant],
) -> None:
    """A committed outbox row, with no API relay running, is published by beat's sweep."""
    tenant = new_tenant()

    async def create(session: AsyncSession) -> str:
        note = await repository.insert(session, tenant.tenant_id, "t", "a b c d")
        await enqueue(session, tenant.tenant_id, COUNT_WORDS, str(note.id))
        return str(note.id)

    note_id = await database.run(create, tenant.tenant_id)

    async def word_count(session: AsyncSession) -> object:
        return await session.scalar(
            text("SELECT word_count FROM notes WHERE id = :id"), {"id": note_id}
        )

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if await database.run(word_count, tenant.tenant_id) == 4:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(
        f"beat never relayed the outbox row\nbeat:\n{beat.tail()}\nworker:\n{worker.tail()}"
    )
