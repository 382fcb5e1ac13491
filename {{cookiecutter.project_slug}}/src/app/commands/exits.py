"""How a console command ends: a known failure is one line naming the fix and exit status 2; a
stop signal after (or before) a graceful start is success.

An operator who runs a command against an unmigrated or unreachable database, without a broker,
or on a busy port needs the fix, not a 146-line traceback. Anything not recognised here is a bug
and keeps its traceback.

What a command says (`say`) is one JSON log record when the environment asks for JSON logs, like
every other line it writes, and the readable line on a development console. The format comes from
the raw environment (`output_format`): the settings may be what failed to load.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, Literal, TextIO

from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError

from app.db.errors import connection_problem
from app.db.retry import sqlstate_of
from app.observability.logging import add_level_and_timestamp, redact, render_json
from app.settings import ConfigError, Settings, load_settings

EXIT_UNUSABLE = 2
# 42P01 undefined table, 42883 undefined function, 3F000 undefined schema: the schema is not
# there (or older than this code).
_SCHEMA_MISSING = {"42P01", "42883", "3F000"}
# Settings a command needs beyond a valid environment, checked before it starts.
_NEEDS: dict[str, tuple[str, ...]] = {
    "dlq list": ("DATABASE_OWNER_URL",),
    "dlq purge": ("DATABASE_OWNER_URL",),
    "dlq replay": ("DATABASE_OWNER_URL", "CELERY_BROKER_URL or REDIS_URL"),
    "dlq drill": ("CELERY_BROKER_URL or REDIS_URL",),
    "purge": ("DATABASE_OWNER_URL",),
}
# Which setting moves a command's listening port elsewhere.
_PORT_SETTING = {"worker": "WORKER_METRICS_PORT", "serve": "--port", "dev": "--port"}
# Commands that stop gracefully on SIGTERM/SIGINT, and must exit 0 then.
_LONG_RUNNING = ("serve", "dev", "worker", "beat")


def output_format() -> Literal["json", "console"]:
    """Settings.effective_log_format from the raw environment: LOG_FORMAT if it is valid, else
    the console in development only. Unreadable values choose JSON, what a machine parses."""
    configured = os.environ.get("LOG_FORMAT", "").strip().lower()
    if configured in ("json", "console"):
        return "json" if configured == "json" else "console"
    environment = os.environ.get("ENVIRONMENT", "development").strip().lower()
    return "console" if environment == "development" else "json"


def say(
    message: str,
    *,
    event: str = "command_failed",
    level: str = "error",
    stream: TextIO | None = None,
    **fields: Any,
) -> None:
    """Tell the operator `message` on stderr (or `stream`): that line on a console, else one JSON
    record with `event`, `level`, `timestamp`, `logger`, `message` and `fields`, redacted like
    every log line."""
    out = stream or sys.stderr
    if output_format() == "console":
        out.write(f"{message}\n")
    else:
        record = redact({"event": event, "message": message, **fields, "logger": "app.cli"})
        add_level_and_timestamp(None, level, record)
        out.write(f"{render_json(None, level, record)}\n")
    out.flush()


def announce(message: str, event: str) -> None:
    """An outcome worth one line on stdout (`configuration OK`), in the same format as `say`."""
    say(message, event=event, level="info", stream=sys.stdout)


def report_config_error(error: ConfigError) -> None:
    """Every bad variable, never a value: the indented list on a console, else one JSON record
    whose `problems` name each variable and what is wrong with it."""
    if output_format() == "console":
        say(str(error))
        return
    names = sorted(error.problems)
    say(
        f"invalid configuration: {', '.join(names)}",
        event="invalid_configuration",
        problems=[{"variable": name, "problem": error.problems[name]} for name in names],
    )


def program_name() -> str:
    """How the operator called us: the console script's name, else `python -m app`."""
    name = Path(sys.argv[0]).name
    return "python -m app" if name.endswith(".py") or not name else name


def command_path(args: argparse.Namespace) -> str:
    """`dlq drill`, `purge`…: the command and its subcommand, as typed."""
    parts = [args.command, getattr(args, "dlq_command", None)]
    return " ".join(part for part in parts if part)


def _unset(settings: Settings, need: str) -> bool:
    if need == "CELERY_BROKER_URL or REDIS_URL":
        return settings.broker_url is None
    return getattr(settings, need.lower()) is None


def missing_settings(command: str) -> str | None:
    """One line naming what `command` needs and the environment lacks, or None."""
    try:
        settings = load_settings()
    except ConfigError:
        return None  # the command reports every bad variable itself
    missing = [need for need in _NEEDS.get(command, ()) if _unset(settings, need)]
    if not missing:
        return None
    return f"`{command}` needs {' and '.join(missing)}: set it in the environment"


def failure_line(error: BaseException, command: str) -> str | None:
    """The one line that tells the operator what to fix, or None if `error` is a bug."""
    if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
        where = _PORT_SETTING.get(command.split()[0], "the port setting")
        return f"`{command}`: a port it listens on is already in use: free it or change {where}"
    if sqlstate_of(error) in _SCHEMA_MISSING:
        return f"database not migrated: run `{program_name()} migrate`"
    if isinstance(error, RedisConnectionError | BrokerError):
        return "Redis or the broker is unreachable: check REDIS_URL / CELERY_BROKER_URL"
    problem = connection_problem(error)
    if problem is not None:
        return (
            f"database unreachable ({problem}): check DATABASE_URL / DATABASE_OWNER_URL "
            "and that PostgreSQL is running"
        )
    return None


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command; a known failure prints one line and returns 2."""
    command = command_path(args)
    if command.split()[0] in _LONG_RUNNING:
        _exit_zero_on_stop_signals()
    missing = missing_settings(command)
    if missing is not None:
        say(missing)
        return EXIT_UNUSABLE
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except Exception as error:
        line = failure_line(error, command)
        if line is None:
            raise
        say(line)
        return EXIT_UNUSABLE


def _exit_zero_on_stop_signals() -> None:
    """SIGTERM and SIGINT end `serve`, `dev`, `worker` and `beat` with 0, through Python's exit.

    uvicorn shuts down gracefully, then re-raises the signal it caught; with the default
    handler the process would die of it (status 143), as if it had failed. Exiting through
    SystemExit also unwinds `dev`'s embedded servers on the way out. Worker and beat replace these
    handlers with Celery's once it is up; until then (checking the database, connecting to the
    broker) a stop signal would kill it with -15 instead of stopping it: nothing has started
    that needs more than unwinding, and a SystemExit inside Celery's start is a clean stop too.
    """

    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(0)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
