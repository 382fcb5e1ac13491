"""BUILD-CONFIG, process level: bad configuration exits before a port opens, printing no secret."""

from __future__ import annotations

import json
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from app.dev.services import ServiceUrls, drop_database, prepare_database
from app.tenants.admin import create_tenant_now
from tests.processes import (
    env_for,
    failed_start,
    free_port,
    port_is_open,
    service_env,
    start_app,
    wait_for_port,
)

SECRET = "s3cr3t-in-the-url"


def _bad_production_env() -> dict[str, str]:
    return service_env(
        ENVIRONMENT="production",
        DATABASE_URL=f"postgresql://app:{SECRET}@db.internal:notaport/acme",
        DATABASE_OWNER_URL=f"mysql://owner:{SECRET}@db.internal/acme",
        SECRET_KEY="short",
        LOG_LEVEL="LOUD",
    )


def test_serve_with_bad_production_config_exits_before_binding() -> None:
    """`serve` exits 2 naming every bad variable, the port never opens, no secret is printed."""
    port = free_port()
    process = start_app(["serve", "--port", str(port)], _bad_production_env())
    opened = False
    while process.poll() is None:
        opened = opened or port_is_open(port)
        time.sleep(0.02)
    out, err = process.communicate()
    assert process.returncode == 2
    assert not opened
    assert not port_is_open(port)
    for name in ("DATABASE_URL", "DATABASE_OWNER_URL", "REDIS_URL", "SECRET_KEY", "LOG_LEVEL"):
        assert name in err
    assert "SUPPORT_URL" in err
    assert SECRET not in out + err


def test_check_config_reports_the_same_problems() -> None:
    """`check-config` runs the same validation: exit 2 and every bad variable named."""
    process = start_app(["check-config"], _bad_production_env())
    out, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "DATABASE_URL" in err
    assert "LOG_LEVEL" in err
    assert SECRET not in out + err


def test_check_config_accepts_a_good_environment(service_urls: ServiceUrls) -> None:
    """A valid environment passes `check-config` with exit status 0."""
    env = service_env(
        ENVIRONMENT="test",
        DATABASE_URL=service_urls.runtime_database_url,
        REDIS_URL=service_urls.redis_url,
    )
    process = start_app(["check-config"], env)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "configuration OK" in out


def test_serve_answers_and_stops_cleanly_on_sigterm(service_urls: ServiceUrls) -> None:
    """A good configuration serves /health/ready with JSON logs, and SIGTERM stops it with 0."""
    port = free_port()
    env = env_for(service_urls)
    process = start_app(["serve", "--port", str(port)], env)
    try:
        assert wait_for_port(port, process), failed_start(process)
        response = httpx2.get(f"http://127.0.0.1:{port}/health/ready", timeout=5)
        assert response.status_code == 200
        assert "server" not in response.headers
        # A real write through every layer, in a process that imported only what `serve` does.
        tenant = create_tenant_now(service_urls.owner_database_url, "serve-test")
        created = httpx2.post(
            f"http://127.0.0.1:{port}/api/v1/notes",
            json={"title": "from a real server"},
            headers={"Authorization": f"Bearer {tenant.api_key}", "Idempotency-Key": '"k-1"'},
            timeout=10,
        )
        assert created.status_code == 201, created.text
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=20)
    # uvicorn re-raises the signal after its graceful shutdown; that is a clean stop, so 0.
    assert process.returncode == 0
    events = [json.loads(line)["event"] for line in out.splitlines() if line.startswith("{")]
    assert "shutdown" in events
    assert "request" in events


def test_dev_on_configured_services_stops_with_0_on_sigterm(service_urls: ServiceUrls) -> None:
    """`dev` (migrate, then serve) exits 0 after a graceful SIGTERM stop, not 143."""
    port = free_port()
    process = start_app(["dev", "--port", str(port)], env_for(service_urls))
    try:
        assert wait_for_port(port, process), failed_start(process)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "Traceback" not in err


def test_create_tenant_prints_one_json_line_with_a_working_key(
    service_urls: ServiceUrls, client: TestClient
) -> None:
    """`create-tenant NAME` prints {"tenant_id", "api_key"}; the key authenticates at once."""
    env = env_for(service_urls)
    process = start_app(["create-tenant", "Acme Corp"], env)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    (line,) = out.strip().splitlines()
    created = json.loads(line)
    assert set(created) == {"tenant_id", "api_key"}
    response = client.get(
        "/api/v1/notes", headers={"Authorization": f"Bearer {created['api_key']}"}
    )
    assert response.status_code == 200


def test_migrate_is_idempotent(service_urls: ServiceUrls) -> None:
    """`migrate` on an up-to-date database succeeds and changes nothing."""
    env = env_for(service_urls)
    process = start_app(["migrate"], env)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err


def _one_line_exit_2(args: list[str], env: dict[str, str]) -> str:
    """Run a command that must fail cleanly; return the message of its one line of stderr, a JSON
    log line (ENVIRONMENT=test logs JSON)."""
    process = start_app(args, env)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 2, (out, err)
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    message: str = _log_record(lines[0])["message"]
    return message


def _log_record(line: str) -> dict[str, Any]:
    record = json.loads(line)
    assert isinstance(record, dict), line
    assert {"event", "level", "timestamp", "message"} <= record.keys(), line
    return record


@pytest.mark.parametrize("args", [["check-config"], ["serve", "--port", str(free_port())]])
def test_a_bad_configuration_is_json_when_the_environment_asks_for_json(args: list[str]) -> None:
    """LOG_FORMAT=json (over development's console) and a bad DATABASE_URL: the settings never
    load, yet every line the command writes is one JSON log record naming the bad variable, and
    no secret is in any."""
    env = service_env(
        ENVIRONMENT="development",
        LOG_FORMAT="json",
        DATABASE_URL=f"postgresql://app:{SECRET}@db.internal:notaport/acme",
        REDIS_URL="redis://127.0.0.1:6379/0",
    )
    process = start_app(args, env)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 2, err
    records = [_log_record(line) for line in (out + err).splitlines()]
    assert [record["event"] for record in records] == ["invalid_configuration"], err
    assert "DATABASE_URL" in {problem["variable"] for problem in records[0]["problems"]}
    assert "DATABASE_URL" in records[0]["message"]
    assert SECRET not in out + err


def test_a_bad_configuration_stays_readable_on_a_development_console() -> None:
    """ENVIRONMENT=development and no LOG_FORMAT: the readable text, one variable a line."""
    env = service_env(DATABASE_URL=f"postgresql://app:{SECRET}@db.internal:notaport/acme")
    process = start_app(["check-config"], env)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 2, err
    assert err.startswith("invalid configuration:\n  DATABASE_URL: "), err
    assert SECRET not in out + err


def test_the_runtime_role_warning_and_the_verdict_are_json_lines(
    service_urls: ServiceUrls,
) -> None:
    """`check-config` outside production with the owner's role as DATABASE_URL and LOG_FORMAT=json:
    the role warning (stderr) and `configuration OK` (stdout) are each one JSON log record."""
    env = env_for(service_urls, LOG_FORMAT="json")
    env["DATABASE_URL"] = service_urls.owner_database_url
    process = start_app(["check-config"], env)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    (warning,) = [_log_record(line) for line in err.splitlines()]
    assert (warning["event"], warning["level"]) == ("runtime_role_unsafe", "warning")
    assert warning["variable"] == "DATABASE_URL"
    assert "owns the tenant tables" in warning["message"]
    (verdict,) = [_log_record(line) for line in out.splitlines()]
    assert verdict["event"] == "configuration_ok"
    assert "configuration OK" in verdict["message"]


@pytest.fixture
def unmigrated_urls(admin_database_url: str, service_urls: ServiceUrls) -> Iterator[ServiceUrls]:
    """A database with the app's roles but no schema."""
    name = f"cli_unmigrated_{uuid.uuid4().hex[:10]}"
    owner_url, runtime_url = prepare_database(admin_database_url, name, recreate=True)
    yield ServiceUrls(owner_url, runtime_url, service_urls.redis_url)
    drop_database(admin_database_url, name)


@pytest.mark.parametrize("args", [["create-tenant", "Acme"], ["dlq", "list"], ["purge"]])
def test_commands_on_an_unmigrated_database_say_migrate(
    args: list[str], unmigrated_urls: ServiceUrls
) -> None:
    """No schema: one line naming the fix (`migrate`), exit 2, no traceback."""
    line = _one_line_exit_2(args, env_for(unmigrated_urls))
    assert line.startswith("database not migrated: run `")
    assert line.endswith(" migrate`")


@pytest.mark.parametrize("args", [["create-tenant", "Acme"], ["migrate"]])
def test_commands_on_an_unreachable_database_say_so(
    args: list[str], service_urls: ServiceUrls
) -> None:
    """Nothing listens at DATABASE_URL: one line naming the variables to check, exit 2."""
    dead = f"postgresql://app_owner@127.0.0.1:{free_port()}/none"
    dead_urls = ServiceUrls(dead, dead.replace("app_owner", "app_runtime"), service_urls.redis_url)
    line = _one_line_exit_2(args, env_for(dead_urls))
    assert line.startswith("database unreachable (unreachable): check DATABASE_URL")


def test_dlq_drill_without_a_broker_names_the_missing_setting(service_urls: ServiceUrls) -> None:
    """`dlq drill` with neither REDIS_URL nor CELERY_BROKER_URL: one line, exit 2."""
    env = env_for(service_urls)
    del env["REDIS_URL"]
    env.pop("CELERY_BROKER_URL", None)
    line = _one_line_exit_2(["dlq", "drill"], env)
    assert line == "`dlq drill` needs CELERY_BROKER_URL or REDIS_URL: set it in the environment"


def test_worker_on_a_busy_metrics_port_names_the_setting(service_urls: ServiceUrls) -> None:
    """The worker's metrics port is taken: one line naming WORKER_METRICS_PORT, exit 2."""
    with socket.socket() as blocker:
        blocker.bind(("0.0.0.0", 0))  # noqa: S104 - the exporter binds the wildcard address
        blocker.listen()
        port = blocker.getsockname()[1]
        env = env_for(service_urls, WORKER_METRICS_PORT=str(port))
        line = _one_line_exit_2(["worker", "--pool", "solo"], env)
    assert "already in use" in line
    assert "WORKER_METRICS_PORT" in line
