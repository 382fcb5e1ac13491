"""The database readiness check: PostgreSQL answers *and* its schema is the one this code expects.

A database that answers `SELECT 1` but was never migrated (or is behind this release) fails every
request with a 500; readiness must say so before traffic arrives. The expected revision is read
once from the migration scripts shipped with the code (Alembic's heads); each check is one query
of `alembic_version`, which the `migrate` command lets the runtime role read.

A database *ahead* of the code (at a revision these scripts do not know) is ready: during a rollout
the new release migrates first, and its migrations are expand steps the old release still works
with (docs/migrations.md), so the old pods keep serving until the new ones are ready.
"""

from __future__ import annotations

from functools import cache

from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.migrate import alembic_config
from app.db.retry import sqlstate_of
from app.health.dependencies import DependencyNotReadyError

_UNDEFINED_TABLE = "42P01"
_INSUFFICIENT_PRIVILEGE = "42501"


@cache
def expected_revisions() -> frozenset[str]:
    """The heads of the migration scripts next to this code (read from disk once)."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


@cache
def known_revisions() -> frozenset[str]:
    """Every revision of the migration scripts next to this code."""
    scripts = ScriptDirectory.from_config(alembic_config())
    return frozenset(script.revision for script in scripts.walk_revisions())


async def check_database_schema(engine: AsyncEngine) -> None:
    """Raise `DependencyNotReadyError` unless the database is at the expected revision.

    Connection failures propagate as they are (the database is down, not wrong).
    """
    expected = expected_revisions()
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(text("SELECT version_num FROM alembic_version"))
            found = frozenset(str(revision) for revision in rows.scalars())
    except DBAPIError as error:
        sqlstate = sqlstate_of(error)
        if sqlstate == _UNDEFINED_TABLE:
            found = frozenset()
        elif sqlstate == _INSUFFICIENT_PRIVILEGE:
            raise DependencyNotReadyError(
                "schema revision unreadable by the runtime role: run the `migrate` command"
            ) from None
        else:
            raise
    if found != expected and found <= known_revisions():
        raise DependencyNotReadyError(
            f"schema not migrated: at {_revisions(found)}, expected {_revisions(expected)}; "
            "run the `migrate` command"
        )


def _revisions(revisions: frozenset[str]) -> str:
    return ", ".join(sorted(revisions)) or "no revision"
