"""Outbox rows that earlier tests left pending in this test worker's database.

The API tests publish their tasks to the suite's own queue, which no worker consumes, so their
rows are never done. Once they pass the redelivery deadline (15 minutes by default, inside one
long run of the suite), any relay of a later test publishes them again, to that test's queue,
and its worker runs hundreds of them before the task the test waits for.
"""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine


async def settle_other_rows(owner_database_url: str, row_id: uuid.UUID | None = None) -> None:
    """Mark every pending row of this database done, but `row_id`."""
    engine = create_async_engine(owner_database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE outbox SET done_at = now(), relayed_at = coalesce(relayed_at, now()) "
                    "WHERE id IS DISTINCT FROM :id AND done_at IS NULL"
                ),
                {"id": row_id},
            )
    finally:
        await engine.dispose()


def settle_leftover_rows(owner_database_url: str) -> None:
    """`settle_other_rows` for every row, from synchronous code (a fixture's own thread, so it
    runs whether or not an event loop is running in the caller's)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, settle_other_rows(owner_database_url)).result()
