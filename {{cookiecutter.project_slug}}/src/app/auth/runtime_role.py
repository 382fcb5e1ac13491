"""Is the DATABASE_URL role really held by row-level security? One catalog query says.

A superuser and a role with BYPASSRLS skip every policy. The owner of the tenant tables (or a
member of the owner role) is held by them only because they are FORCEd, may turn that off, and
gets the owner-only policies that read every tenant's keys. Settings can only compare role
names; the server knows the privileges. So before `serve`, `check-config`, `worker` or `beat`
starts anything, the role is looked up: production refuses to start, elsewhere one warning line
says what is wrong (one JSON log record when the environment asks for JSON logs). No value of
the URL is ever printed.
"""

from __future__ import annotations

import asyncio
import signal

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

from app.commands.exits import say
from app.settings import ConfigError, Settings, require_service_urls

CONNECT_TIMEOUT_S = 5
_PRIVILEGES = text(
    """
    SELECT r.rolsuper AS superuser,
           r.rolbypassrls AS bypassrls,
           EXISTS (
               SELECT 1 FROM pg_class AS c
               WHERE c.relkind IN ('r', 'p') AND c.relrowsecurity
                 AND pg_has_role(current_user, c.relowner, 'MEMBER')
           ) AS owns_tenant_tables
    FROM pg_roles AS r
    WHERE r.rolname = current_user
    """
)


async def runtime_role_problems(database_url: str) -> list[str]:
    """What lets the URL's role past row-level security; empty when nothing does."""
    url = make_url(database_url).set(drivername="postgresql+asyncpg")
    engine = create_async_engine(
        url, connect_args={"timeout": CONNECT_TIMEOUT_S}, hide_parameters=True
    )
    try:
        async with engine.connect() as connection:
            role = (await connection.execute(_PRIVILEGES)).one()
    finally:
        await engine.dispose()
    if role.superuser:
        return ["its role is a superuser, which bypasses row-level security"]
    problems = []
    if role.bypassrls:
        problems.append("its role has BYPASSRLS, which skips row-level security")
    if role.owns_tenant_tables:
        problems.append(
            "its role owns the tenant tables (or is a member of their owner role), so it can "
            "turn row-level security off: use the runtime role, not DATABASE_OWNER_URL's"
        )
    return problems


def _problems_unless_stopped(database_url: str) -> list[str]:
    """`runtime_role_problems`, where SIGTERM or SIGINT cancels the check and exits 0.

    Cancelling lets the driver close a half-open connection itself, where a SystemExit raised
    from a signal handler in the middle of the event loop would cut through it.
    """
    stop_signals = (signal.SIGTERM, signal.SIGINT)
    previous = {signum: signal.getsignal(signum) for signum in stop_signals}

    async def check() -> list[str]:
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        assert task is not None  # noqa: S101 - asyncio.run always runs a task

        def stop() -> None:
            loop.set_exception_handler(_quiet_about_unretrieved_futures)
            task.cancel()

        for signum in stop_signals:
            loop.add_signal_handler(signum, stop)
        return await runtime_role_problems(database_url)

    try:
        return asyncio.run(check())
    except asyncio.CancelledError:
        raise SystemExit(0) from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _quiet_about_unretrieved_futures(
    loop: asyncio.AbstractEventLoop, context: dict[str, object]
) -> None:
    """A connection cancelled half-open leaves asyncpg's own connect future failed and never
    awaited ("Future exception was never retrieved", plain text on stderr): nothing is lost by
    not reporting it after a stop. Everything else goes to the default handler."""
    if "never retrieved" not in str(context.get("message", "")):
        loop.default_exception_handler(context)


def require_services_and_runtime_role(settings: Settings) -> None:
    """`require_service_urls`, then vet the runtime role: a `ConfigError` naming DATABASE_URL in
    production (also when the database cannot be asked), one warning line on stderr elsewhere."""
    require_service_urls(settings)
    assert settings.database_url is not None  # noqa: S101 - required just above
    try:
        problems = _problems_unless_stopped(settings.database_url.get_secret_value())
    except (SQLAlchemyError, OSError) as error:
        # The class only: a driver's message may name the host and user.
        problems = [f"its role could not be checked: no answer ({type(error).__name__})"]
    if not problems:
        return
    if settings.is_production:
        raise ConfigError({"DATABASE_URL": "; ".join(problems)})
    # Before logging is configured (or even possible): like a configuration error.
    say(
        f"warning: DATABASE_URL: {'; '.join(problems)} (production refuses to start)",
        event="runtime_role_unsafe",
        level="warning",
        variable="DATABASE_URL",
        problems=problems,
    )
