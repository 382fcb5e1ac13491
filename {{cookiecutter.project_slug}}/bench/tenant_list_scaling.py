"""Benchmark: a tenant-scoped list stays flat as the notes table grows from 10k to 1M rows.

Runs the service's own list query (`app.notes.repository.list_statement`) as the runtime role with
the tenant set, exactly as a request does, and reports p50/p99 at each size, their ratio, and the
index the plan uses. A benchmark, not a test: timings depend on the machine.

    make bench-db            # embedded PostgreSQL, or TEST_DATABASE_URL (a superuser URL)
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from app.db.migrate import upgrade
from app.db.tenancy import TENANT_SETTING
from app.dev.services import drop_database, embedded_postgres, prepare_database
from app.notes.repository import list_statement
from app.notes.schemas import NoteListQuery

SIZES = (10_000, 1_000_000)
TENANTS = 1_000
SAMPLES = 300
GOAL_RATIO = 1.5


async def _as_tenant(conn: AsyncConnection, tenant: uuid.UUID) -> None:
    await conn.execute(
        text("SELECT set_config(:n, :t, true)"), {"n": TENANT_SETTING, "t": str(tenant)}
    )


async def _grow(owner: AsyncEngine, tenants: list[uuid.UUID], total: int) -> None:
    """Add notes spread evenly over `tenants` until the table holds `total` rows."""
    async with owner.begin() as conn:
        have = int(await conn.scalar(text("SELECT count(*) FROM notes")) or 0)
    per_tenant = (total - have) // len(tenants)
    for tenant in tenants:
        async with owner.begin() as conn:
            await _as_tenant(conn, tenant)
            await conn.execute(
                text(
                    "INSERT INTO notes (tenant_id, title, created_at) SELECT :t, 'note ' || g, "
                    "now() - make_interval(secs => g) FROM generate_series(1, :n) g"
                ),
                {"t": tenant, "n": per_tenant},
            )
    async with owner.begin() as conn:
        await conn.execute(text("ANALYZE notes"))


async def _measure(runtime: AsyncEngine, tenant: uuid.UUID) -> tuple[float, float, str]:
    statement = list_statement(tenant, NoteListQuery(), after=None)
    sql = str(statement.compile(dialect=runtime.dialect, compile_kwargs={"literal_binds": True}))
    timings: list[float] = []
    async with runtime.connect() as conn:
        for _ in range(SAMPLES):
            async with conn.begin():
                await _as_tenant(conn, tenant)
                started = time.perf_counter()
                await conn.execute(text(sql))
                timings.append((time.perf_counter() - started) * 1000)
        async with conn.begin():
            await _as_tenant(conn, tenant)
            plan = (await conn.execute(text(f"EXPLAIN (FORMAT JSON) {sql}"))).scalar_one()
    plan_doc = plan if isinstance(plan, list) else json.loads(plan)
    timings.sort()
    return (
        statistics.median(timings),
        timings[int(len(timings) * 0.99) - 1],
        _index(plan_doc[0]["Plan"]),
    )


def _index(plan: dict[str, object]) -> str:
    if "Index Name" in plan:
        return str(plan["Index Name"])
    for child in plan.get("Plans", []):  # type: ignore[attr-defined]
        found = _index(child)
        if found != "none":
            return found
    return "none"


async def _run(owner_url: str, runtime_url: str) -> int:
    owner, runtime = create_async_engine(owner_url), create_async_engine(runtime_url)
    tenants = [uuid.uuid4() for _ in range(TENANTS)]
    async with owner.begin() as conn:
        for tenant in tenants:
            await _as_tenant(conn, tenant)
            await conn.execute(
                text("INSERT INTO tenants (id, name) VALUES (:t, 'bench')"), {"t": tenant}
            )
    results = []
    for size in SIZES:
        started = time.perf_counter()
        await _grow(owner, tenants, size)
        p50, p99, index = await _measure(runtime, tenants[0])
        results.append(p50)
        print(
            f"{size:>9,} notes  seed {time.perf_counter() - started:6.1f}s  "
            f"p50 {p50:6.3f} ms  p99 {p99:6.3f} ms  index {index}"
        )
    await owner.dispose()
    await runtime.dispose()
    ratio = results[-1] / results[0]
    verdict = "OK" if ratio <= GOAL_RATIO else "OVER BUDGET"
    sizes = f"{SIZES[-1]:,} / {SIZES[0]:,} rows"
    print(f"p50 ratio {sizes}: {ratio:.2f}x (goal <= {GOAL_RATIO}x) {verdict}")
    return 0 if ratio <= GOAL_RATIO else 1


def main() -> int:
    root = Path(__file__).resolve().parents[1] / ".devservices" / "bench"
    with ExitStack() as stack:
        admin = os.environ.get("TEST_DATABASE_URL") or stack.enter_context(embedded_postgres(root))
        database = f"bench_{os.getpid()}"
        owner_url, runtime_url = prepare_database(admin, database, recreate=True)
        try:
            upgrade(owner_url, runtime_url)
            return asyncio.run(_run(owner_url, runtime_url))
        finally:
            drop_database(admin, database)


if __name__ == "__main__":
    raise SystemExit(main())
