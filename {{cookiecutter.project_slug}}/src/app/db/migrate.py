"""Run Alembic from code: the `migrate` command, `dev` and the test suite all come through here."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TextIO

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import pool, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.observability.logging import get_logger
from app.settings import load_settings

log = get_logger("app.migrate")

# src/app/db/migrate.py → the project root, where alembic.ini and migrations/ live.
PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_RUNTIME_ROLE = "app_runtime"


def alembic_config(
    owner_url: str | None = None,
    runtime_url: str | None = None,
    output_buffer: TextIO | None = None,
) -> Config:
    """Alembic's config; URLs default to DATABASE_OWNER_URL and DATABASE_URL.

    Offline SQL (`--sql`) goes to `output_buffer` when given, else to stdout.
    """
    config = Config(str(PROJECT_ROOT / "alembic.ini"), output_buffer=output_buffer)
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["owner_url"] = owner_url
    runtime_role = make_url(runtime_url).username if runtime_url else None
    config.attributes["runtime_role"] = runtime_role or DEFAULT_RUNTIME_ROLE
    return config


def migration_owner_url(config: Config) -> str:
    """The owner role's URL from the config, else from the validated environment."""
    owner_url = config.attributes.get("owner_url")
    if owner_url:
        return str(owner_url)
    settings = load_settings()
    if settings.database_owner_url is None:
        raise RuntimeError("DATABASE_OWNER_URL is required to migrate")
    return settings.database_owner_url.get_secret_value()


def upgrade(owner_url: str, runtime_url: str, revision: str = "head") -> None:
    """Migrate the database up to `revision` as the owner, granting to the runtime role.

    A database already at a revision these scripts do not know was migrated by a newer release:
    rolling back runs this older release's `migrate`, which then has nothing to do (its code runs
    on the newer, expanded schema; docs/deployment.md, "Roll back").
    """
    config = alembic_config(owner_url, runtime_url)
    newer = asyncio.run(_revisions_unknown_here(owner_url, config))
    if newer and revision == "head":
        log.info("migrate_skipped", reason="database ahead of this release", revisions=newer)
        return
    command.upgrade(config, revision)
    asyncio.run(_let_runtime_read_revision(owner_url, config.attributes["runtime_role"]))


async def _revisions_unknown_here(owner_url: str, config: Config) -> list[str]:
    """The database's revisions that the migration scripts next to this code do not know."""
    engine = create_async_engine(owner_url, poolclass=pool.NullPool, hide_parameters=True)
    try:
        async with engine.connect() as connection:
            exists = await connection.scalar(text("SELECT to_regclass('alembic_version')"))
            if exists is None:
                return []
            found = await connection.execute(text("SELECT version_num FROM alembic_version"))
            revisions = [str(revision) for revision in found.scalars()]
    finally:
        await engine.dispose()
    known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    return sorted(set(revisions) - known)


async def _let_runtime_read_revision(owner_url: str, runtime_role: str) -> None:
    """Readiness compares the schema's revision with the code's (app.health.schema), as the
    runtime role; Alembic creates its version table after the migrations' own grants ran."""
    engine = create_async_engine(
        owner_url, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT", hide_parameters=True
    )
    try:
        async with engine.connect() as connection:
            role = connection.dialect.identifier_preparer.quote(runtime_role)
            await connection.execute(text(f"GRANT SELECT ON alembic_version TO {role}"))
    finally:
        await engine.dispose()


def downgrade(owner_url: str, runtime_url: str, revision: str = "base") -> None:
    """Migrate the database down to `revision`."""
    command.downgrade(alembic_config(owner_url, runtime_url), revision)
