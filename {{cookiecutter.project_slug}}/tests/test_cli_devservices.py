"""The console script finds `dev`'s services with no exports (development only); every operator
command on an unmigrated or unreachable database says what to run in one line and exits 2; plain
`alembic upgrade head` grants to the runtime role of DATABASE_URL, as `migrate` does."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.dev.services import ServiceUrls, drop_database, prepare_database
from tests.processes import (
    PROJECT_ROOT,
    env_for,
    free_port,
    pytest_sessions_starting,
    service_env,
    short_tmp_dir,
    wait_for_port,
)

_KEY = re.compile(r"Demo tenant's API key \(kept in \.devservices/demo\.json\): (\S+)")
# Every operator command that reads or writes the database, as an operator types it.
_TENANT = "0b7e5f4e-4c1a-4d53-9a55-2f1e8d6c3b21"  # fixed: xdist workers collect the same ids
DATABASE_COMMANDS = [
    ["create-tenant", "Acme"],
    ["create-user", "ada@example.com", "--tenant", _TENANT],
    ["api-keys", "list", "--tenant", _TENANT],
    ["api-keys", "create", "--tenant", _TENANT],
    ["dlq", "list"],
    ["dlq", "purge"],
    ["purge"],
]


def _run(
    args: list[str], env: dict[str, str], cwd: Path = PROJECT_ROOT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=env,
        cwd=cwd,
        input="a long enough passphrase for ada\n",
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_line_exit_2(args: list[str], env: dict[str, str]) -> str:
    done = _run(args, env)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    # ENVIRONMENT=test writes JSON records; the operator's line is their message.
    return str(json.loads(line)["message"]) if line.startswith("{") else line


@pytest.fixture
def unmigrated_urls(admin_database_url: str, service_urls: ServiceUrls) -> Iterator[ServiceUrls]:
    """A database with the app's roles but no schema."""
    name = f"cli_empty_{uuid.uuid4().hex[:10]}"
    owner_url, runtime_url = prepare_database(admin_database_url, name, recreate=True)
    yield ServiceUrls(owner_url, runtime_url, service_urls.redis_url)
    drop_database(admin_database_url, name)


@pytest.mark.parametrize("args", DATABASE_COMMANDS, ids=" ".join)
def test_every_command_on_an_unmigrated_database_says_migrate(
    args: list[str], unmigrated_urls: ServiceUrls
) -> None:
    """No schema: one line naming the command to run (`… migrate`), exit 2, no traceback."""
    line = _one_line_exit_2(args, env_for(unmigrated_urls))
    assert re.fullmatch(r"database not migrated: run `.+ migrate`", line), line


@pytest.mark.parametrize("args", [*DATABASE_COMMANDS, ["migrate"]], ids=" ".join)
def test_every_command_on_an_unreachable_database_says_so(
    args: list[str], service_urls: ServiceUrls
) -> None:
    """Nothing listens at the database URLs: one line naming what to check, exit 2."""
    dead = f"postgresql://app_owner@127.0.0.1:{free_port()}/none"
    dead_urls = ServiceUrls(dead, dead.replace("app_owner", "app_runtime"), service_urls.redis_url)
    line = _one_line_exit_2(args, env_for(dead_urls))
    assert line.startswith("database unreachable (unreachable): check DATABASE_URL"), line


def _write_state(root: Path, pid: int, urls: ServiceUrls) -> None:
    root.mkdir()
    state = {
        "pid": pid,
        "urls": {
            "DATABASE_OWNER_URL": urls.owner_database_url,
            "DATABASE_URL": urls.runtime_database_url,
            "REDIS_URL": urls.redis_url,
        },
    }
    (root / "services.json").write_text(json.dumps(state))


def test_a_command_uses_the_urls_a_running_dev_recorded(
    service_urls: ServiceUrls, tmp_path: Path
) -> None:
    """With DATABASE_URL unset, `create-tenant` in the directory of a running `dev` uses the
    URLs recorded in .devservices/services.json."""
    _write_state(tmp_path / ".devservices", os.getpid(), service_urls)
    done = _run(["create-tenant", "from-state"], service_env(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["api_key"].startswith("ak_")


def test_production_never_reads_the_dev_state(service_urls: ServiceUrls, tmp_path: Path) -> None:
    """ENVIRONMENT=production ignores .devservices: the missing URLs are reported instead."""
    _write_state(tmp_path / ".devservices", os.getpid(), service_urls)
    env = service_env(ENVIRONMENT="production", SECRET_KEY="x" * 64)
    done = _run(["dlq", "list"], env, cwd=tmp_path)
    assert done.returncode == 2
    assert "DATABASE_URL" in done.stderr
    assert service_urls.owner_database_url not in done.stdout + done.stderr


def test_a_record_left_by_a_dead_dev_is_ignored(service_urls: ServiceUrls, tmp_path: Path) -> None:
    """A services.json whose `dev` has exited (no embedded data either) is not used."""
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    _write_state(tmp_path / ".devservices", int(dead.stdout), service_urls)
    line = _one_line_exit_2(["purge"], service_env())
    assert "DATABASE_OWNER_URL" in line


@dataclass
class DevRun:
    process: subprocess.Popen[str]
    log: Path
    port: int

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_key(self, seconds: float = 60.0) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = _KEY.search(self.output())
            if found:
                return found.group(1)
            assert self.process.poll() is None, self.output()
            time.sleep(0.2)
        raise AssertionError(self.output())

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        return self.process.wait(timeout=60)


def _start_dev(workdir: Path, log_name: str) -> DevRun:
    port = free_port()
    log = workdir.parent / log_name
    env = service_env()  # no service URLs: `dev` embeds PostgreSQL and Redis
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "dev", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    run = DevRun(process, log, port)
    assert wait_for_port(port, process, seconds=120), run.output()
    return run


@pytest.fixture(scope="module")
def dev_workdir() -> Iterator[Path]:
    with short_tmp_dir("devrun-") as root:  # not under tmp_path: see short_tmp_dir
        workdir = root / "project"
        workdir.mkdir()
        yield workdir


def test_dev_prints_a_working_key_and_the_commands_find_its_services(
    dev_workdir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`dev` starts while other pytest sessions do and prints a demo key and a curl; the key
    creates a note; `create-tenant`, `dlq list` and `purge` work with no exports; Ctrl-C exits 0
    with one line about the embedded servers."""
    with pytest_sessions_starting(tmp_path_factory):
        run = _start_dev(dev_workdir, "first.log")
    try:
        key = run.wait_for_key()
        assert "Idempotency-Key: demo-note-1" in run.output()
        created = httpx2.post(
            f"http://127.0.0.1:{run.port}/api/v1/notes",
            headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "demo-note-1"},
            json={"title": "Hello", "body": "My first note"},
            timeout=10,
        )
        assert created.status_code == 201, created.text
        for args in (["create-tenant", "second"], ["dlq", "list"], ["purge"]):
            done = _run(args, service_env(), cwd=dev_workdir)
            assert done.returncode == 0, (args, done.stderr)
    finally:
        status = run.stop()
    output = run.output()
    assert status == 0, output
    assert "embedded PostgreSQL and Redis stopped" in output
    assert "pg_ctl" not in output
    assert not (dev_workdir / ".devservices" / "services.json").exists()


@pytest.fixture(scope="module")
def stopped_dev_workdir(dev_workdir: Path) -> Path:
    """`dev_workdir` after a `dev` has run there and stopped: its demo key and data remain.
    Runs one `dev` unless a test in this worker already did (xdist may split this module)."""
    if not (dev_workdir / ".devservices" / "demo.json").exists():
        run = _start_dev(dev_workdir, "setup.log")
        try:
            run.wait_for_key()
        finally:
            assert run.stop() == 0, run.output()
    return dev_workdir


def test_dev_keeps_its_demo_key_across_restarts(stopped_dev_workdir: Path) -> None:
    """A second start prints the key stored by the first (one demo tenant, not one per run)."""
    dev_workdir = stopped_dev_workdir
    stored = json.loads((dev_workdir / ".devservices" / "demo.json").read_text())["api_key"]
    run = _start_dev(dev_workdir, "second.log")
    try:
        assert run.wait_for_key() == stored
    finally:
        assert run.stop() == 0


def test_without_dev_a_command_starts_the_embedded_postgres(stopped_dev_workdir: Path) -> None:
    """`dev` stopped, its data there: `create-tenant` starts the embedded PostgreSQL itself."""
    dev_workdir = stopped_dev_workdir
    assert not (dev_workdir / ".devservices" / "services.json").exists()
    done = _run(["create-tenant", "offline"], service_env(), cwd=dev_workdir)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tenant_id"]
    assert not (dev_workdir / ".devservices" / "postgres" / "postmaster.pid").exists()


async def _execute(url: str, sql: str, **values: str) -> tuple[object, ...] | None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            result = await connection.execute(text(sql), values)
            row = result.first() if result.returns_rows else None
            return tuple(row) if row is not None else None
    finally:
        await engine.dispose()


def _sql(url: str, sql: str, **values: str) -> tuple[object, ...] | None:
    asyncpg_url = make_url(url).set(drivername="postgresql+asyncpg")
    return asyncio.run(_execute(asyncpg_url.render_as_string(hide_password=False), sql, **values))


def test_plain_alembic_grants_to_the_runtime_role_of_database_url(
    admin_database_url: str, unmigrated_urls: ServiceUrls
) -> None:
    """`alembic upgrade head` grants to the role named in DATABASE_URL (not a fixed name),
    alembic_version included, exactly like `migrate`."""
    role = f"rt_{uuid.uuid4().hex[:10]}"
    _sql(admin_database_url, f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS")
    runtime_url = make_url(unmigrated_urls.runtime_database_url).set(username=role)
    env = service_env(
        ENVIRONMENT="test",
        DATABASE_OWNER_URL=unmigrated_urls.owner_database_url,
        DATABASE_URL=runtime_url.render_as_string(hide_password=False),
    )
    try:
        done = subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", "head"],
            env=env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        granted = _sql(
            unmigrated_urls.owner_database_url,
            "SELECT has_table_privilege(:r, 'notes', 'SELECT'), "
            "has_table_privilege(:r, 'alembic_version', 'SELECT')",
            r=role,
        )
        assert granted == (True, True)
    finally:
        drop_database(
            admin_database_url, make_url(unmigrated_urls.owner_database_url).database or ""
        )
        _sql(admin_database_url, f"DROP ROLE IF EXISTS {role}")
