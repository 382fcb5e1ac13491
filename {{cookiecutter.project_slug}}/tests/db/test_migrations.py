"""DATA-MIGRATIONS: migrations go up, down and up again; their SQL passes squawk; models match."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine

from app.db.migrate import alembic_config, downgrade, upgrade
from app.db.models import metadata
from app.dev.services import ServiceUrls, drop_database, prepare_database


async def _query(url: str, sql: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return {row[0] for row in await conn.execute(text(sql))}
    finally:
        await engine.dispose()


def _tables(url: str) -> set[str]:
    return asyncio.run(_query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))


def test_up_down_up_on_a_fresh_database(admin_database_url: str) -> None:
    """Every migration applies, reverts to an empty schema, and applies again."""
    name = f"migrations_{uuid.uuid4().hex[:12]}"
    owner, runtime = prepare_database(admin_database_url, name, recreate=True)
    try:
        upgrade(owner, runtime)
        assert {"tenants", "api_keys", "notes", "alembic_version"} <= _tables(owner)
        downgrade(owner, runtime)
        assert _tables(owner) == {"alembic_version"}
        upgrade(owner, runtime)
        assert {"tenants", "api_keys", "notes"} <= _tables(owner)
    finally:
        drop_database(admin_database_url, name)


def _offline_sql() -> str:
    buffer = io.StringIO()
    command.upgrade(alembic_config(output_buffer=buffer), "head", sql=True)
    return buffer.getvalue()


def test_migration_sql_sets_timeouts_and_passes_squawk(tmp_path: Path) -> None:
    """`alembic upgrade head --sql` sets lock/statement timeouts and squawk finds nothing."""
    sql = _offline_sql()
    assert "SET lock_timeout = '2s'" in sql
    assert "SET statement_timeout" in sql
    # Alembic's own bookkeeping table (a VARCHAR(32) key) is not ours to change: lint the rest.
    ours = [part for part in sql.split(";\n") if "alembic_version" not in part]
    script = tmp_path / "upgrade.sql"
    script.write_text(";\n".join(ours))
    squawk = shutil.which("squawk", path=str(Path(sys.executable).parent)) or "squawk"
    result = subprocess.run(
        [squawk, "--pg-version", "15", str(script)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_models_match_the_migrated_schema(service_urls: ServiceUrls) -> None:
    """Autogenerate finds no difference: the ORM models and the migrations describe one schema."""

    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async def run() -> list[object]:
        engine = create_async_engine(service_urls.owner_database_url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(diff)
        finally:
            await engine.dispose()

    assert asyncio.run(run()) == []
