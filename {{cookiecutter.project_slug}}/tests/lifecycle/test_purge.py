"""DATA-LIFECYCLE: retention is declared in code; the purge is bounded, idempotent, exclusive."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.db.tenancy import TENANT_SETTING
from app.dev.services import ServiceUrls
from app.lifecycle.retention import PURGE_LOCK, purge_expired, retention_policies
from app.lifecycle.tasks import purge_in_worker
from app.settings import Settings
from app.tenants.service import NewTenant
from app.worker.policy import decide
from app.worker.tasks import retry_policy
from tests.processes import env_for, free_port, start_app


@pytest.fixture
async def owner(service_urls: ServiceUrls) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(service_urls.owner_database_url)
    yield engine
    await engine.dispose()


async def _notes(owner: AsyncEngine, tenant: NewTenant, deleted_days_ago: int, count: int) -> None:
    async with owner.begin() as conn:
        await conn.execute(
            text("SELECT set_config(:n, :t, true)"),
            {"n": TENANT_SETTING, "t": str(tenant.tenant_id)},
        )
        await conn.execute(
            text(
                "INSERT INTO notes (tenant_id, title, deleted_at) SELECT :t, 'n' || g, "
                "now() - make_interval(days => :days) FROM generate_series(1, :count) g"
            ),
            {"t": tenant.tenant_id, "days": deleted_days_ago, "count": count},
        )


async def _remaining(owner: AsyncEngine, tenant: NewTenant) -> int:
    async with owner.begin() as conn:
        await conn.execute(
            text("SELECT set_config(:n, :t, true)"),
            {"n": TENANT_SETTING, "t": str(tenant.tenant_id)},
        )
        # The owner's purge policy shows every tenant's notes: count this tenant's only.
        count = await conn.scalar(
            text("SELECT count(*) FROM notes WHERE tenant_id = :t"), {"t": tenant.tenant_id}
        )
        return int(count or 0)


def test_every_expiring_table_declares_a_retention(settings: Settings) -> None:
    """Soft-deleted notes, idempotency records, dead letters, relayed outbox rows, incomplete
    uploads and ended browser sessions expire."""
    tables = {rule.table: rule.keep_for.total_seconds() for rule in retention_policies(settings)}
    assert tables == {
        "notes": 30 * 86400,
        "idempotency_keys": 24 * 3600,
        "dead_letters": 30 * 86400,
        "outbox": 7 * 86400,
        # 30 days after a session ended (revoked, or its newest refresh token expired).
        "session_families": 30 * 86400,
        "refresh_tokens": 30 * 86400,
        # Expired at `expires_at` itself (set only while an upload is incomplete).
        "uploads": 0,
    }


async def test_purge_deletes_only_expired_rows_in_batches_and_twice_is_safe(
    owner: AsyncEngine, settings: Settings, new_tenant: Callable[[], NewTenant]
) -> None:
    """25 notes deleted 40 days ago go (in batches of 10), 5 deleted yesterday stay; rerun: 0."""
    tenant = new_tenant()
    await _notes(owner, tenant, deleted_days_ago=40, count=25)
    await _notes(owner, tenant, deleted_days_ago=1, count=5)
    first = await purge_expired(owner, retention_policies(settings), batch_size=10)
    second = await purge_expired(owner, retention_policies(settings), batch_size=10)
    assert first is not None
    assert first["notes"] >= 25
    assert second is not None
    assert second["notes"] == 0
    assert await _remaining(owner, tenant) == 5


async def test_a_second_purge_at_the_same_time_skips(
    owner: AsyncEngine, settings: Settings
) -> None:
    """While one purge holds the lock, another returns None instead of racing it."""
    async with owner.connect() as holder:
        await holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": PURGE_LOCK})
        try:
            assert await purge_expired(owner, retention_policies(settings)) is None
        finally:
            await holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PURGE_LOCK})


def test_the_purge_command_reports_per_table(service_urls: ServiceUrls) -> None:
    """`purge` runs every rule now and prints one JSON line of deleted counts per table."""
    env = env_for(service_urls)
    process = start_app(["purge"], env)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["skipped"] is False
    assert set(report["deleted"]) == {
        "notes",
        "idempotency_keys",
        "dead_letters",
        "outbox",
        "session_families",
        "refresh_tokens",
        "uploads",
    }


async def test_a_purge_in_a_database_outage_goes_back_to_the_broker(
    make_settings: Callable[..., Settings],
) -> None:
    """The purge's owner connection refused: the task is requeued like any task that cannot
    reach the service's own database, spending none of its retry budget."""
    dead = f"postgresql://app_owner@127.0.0.1:{free_port()}/app"
    with pytest.raises(Exception) as failure:  # noqa: PT011 - decide() judges what was raised
        await purge_in_worker(make_settings(database_owner_url=dead))
    decision = decide(failure.value, 0, retry_policy())
    assert decision.action == "requeue", repr(failure.value)
    assert decision.reason == "dependency outage: unreachable"
