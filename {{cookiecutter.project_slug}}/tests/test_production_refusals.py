"""SEC-TENANT, SEC-SECRETS, BUILD-CONFIG at process level: production refuses to start with a
runtime role that escapes row-level security or a SECRET_KEY without entropy, before any port
opens; development starts, with one warning line."""

from __future__ import annotations

import asyncio
import secrets
import signal
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.auth.runtime_role import runtime_role_problems
from app.dev.services import OWNER_ROLE, ServiceUrls
from tests.processes import (
    failed_start,
    free_port,
    port_is_open,
    service_env,
    start_app,
    wait_for_port,
)

PASSWORD = "pw-s3cret-in-url"  # a marker that must never be printed
SUPPORT_URL = "https://help.acme.test/"


async def _as_admin(admin_url: str, *statements: str) -> None:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def privileged_urls(admin_database_url: str, service_urls: ServiceUrls) -> Iterator[dict[str, str]]:
    """A URL of the test database per way a role can escape row-level security, made of real
    roles on the real server: the superuser, a BYPASSRLS role, a member of the owner role."""
    admin = make_url(admin_database_url).set(drivername="postgresql+asyncpg")
    admin_dsn = admin.render_as_string(hide_password=False)
    suffix = uuid.uuid4().hex[:10]
    bypass, member = f"test_bypass_{suffix}", f"test_member_{suffix}"
    asyncio.run(
        _as_admin(
            admin_dsn,
            f"CREATE ROLE {bypass} LOGIN NOSUPERUSER BYPASSRLS",
            f"CREATE ROLE {member} LOGIN NOSUPERUSER NOBYPASSRLS IN ROLE {OWNER_ROLE}",
        )
    )
    database = make_url(service_urls.owner_database_url)

    def as_role(username: str | None, password: str | None) -> str:
        url = database.set(drivername="postgresql", username=username, password=password)
        return url.render_as_string(hide_password=False)

    try:
        yield {
            "superuser": as_role(admin.username, admin.password),
            "bypassrls": as_role(bypass, PASSWORD),
            "owner": as_role(member, PASSWORD),
        }
    finally:
        asyncio.run(_as_admin(admin_dsn, f"DROP ROLE {bypass}", f"DROP ROLE {member}"))


def _env(environment: str, database_url: str, urls: ServiceUrls, **extra: str) -> dict[str, str]:
    values = {
        "ENVIRONMENT": environment,
        "DATABASE_URL": database_url,
        "DATABASE_OWNER_URL": urls.owner_database_url,
        "REDIS_URL": urls.redis_url,
        "SECRET_KEY": secrets.token_urlsafe(32),
        "SUPPORT_URL": SUPPORT_URL,
        "SESSION_SIGNING_KEYS": f"k1:{secrets.token_urlsafe(32)}",
        "CLAMD_ADDRESS": "tcp://127.0.0.1:3310",
    }
    return service_env(**{**values, **extra})


async def test_the_runtime_role_passes_the_check(service_urls: ServiceUrls) -> None:
    """The role the migrations grant to (no superuser or BYPASSRLS, owns nothing) passes."""
    assert await runtime_role_problems(service_urls.runtime_database_url) == []


@pytest.mark.parametrize(
    ("role", "named"), [("superuser", "superuser"), ("bypassrls", "BYPASSRLS"), ("owner", "owner")]
)
async def test_each_way_past_row_level_security_is_named(
    privileged_urls: dict[str, str], role: str, named: str
) -> None:
    """The one catalog query finds a superuser, a BYPASSRLS role and the owner's member."""
    problems = await runtime_role_problems(privileged_urls[role])
    assert len(problems) == 1, problems
    assert named in problems[0]


def test_production_refuses_to_serve_as_a_privileged_role_before_binding(
    privileged_urls: dict[str, str], service_urls: ServiceUrls
) -> None:
    """`serve` in production as the superuser: exit 2 naming DATABASE_URL, the port never opens."""
    port = free_port()
    env = _env("production", privileged_urls["superuser"], service_urls)
    process = start_app(["serve", "--port", str(port)], env)
    opened = False
    while process.poll() is None:
        opened = opened or port_is_open(port)
        time.sleep(0.02)
    out, err = process.communicate()
    assert process.returncode == 2, out + err
    assert not opened
    assert "DATABASE_URL" in err
    assert "superuser" in err
    assert PASSWORD not in out + err


@pytest.mark.parametrize("role", ["bypassrls", "owner"])
def test_check_config_refuses_a_privileged_role_in_production(
    privileged_urls: dict[str, str], service_urls: ServiceUrls, role: str
) -> None:
    """`check-config` runs the same check: exit 2, DATABASE_URL named, no password printed."""
    process = start_app(["check-config"], _env("production", privileged_urls[role], service_urls))
    out, err = process.communicate(timeout=60)
    assert process.returncode == 2, out + err
    assert "DATABASE_URL" in err
    assert PASSWORD not in out + err


def test_production_refuses_a_database_it_cannot_check(service_urls: ServiceUrls) -> None:
    """An unreachable database in production: the role cannot be vetted, so nothing starts."""
    dead = f"postgresql://app_runtime:{PASSWORD}@127.0.0.1:{free_port()}/acme"
    process = start_app(["check-config"], _env("production", dead, service_urls))
    out, err = process.communicate(timeout=60)
    assert process.returncode == 2, out + err
    assert "DATABASE_URL" in err
    assert PASSWORD not in out + err


def test_development_serves_as_a_privileged_role_with_one_warning_line(
    privileged_urls: dict[str, str], service_urls: ServiceUrls
) -> None:
    """Outside production the same role starts the service, with one warning naming DATABASE_URL."""
    port = free_port()
    env = _env("development", privileged_urls["bypassrls"], service_urls, LOG_FORMAT="json")
    process = start_app(["serve", "--port", str(port)], env)
    try:
        assert wait_for_port(port, process), failed_start(process)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    warnings = [line for line in err.splitlines() if "DATABASE_URL" in line]
    assert len(warnings) == 1, err
    assert "BYPASSRLS" in warnings[0]
    assert "warning" in warnings[0].lower()
    assert PASSWORD not in out + err


def test_production_refuses_a_weak_secret_key_by_name(service_urls: ServiceUrls) -> None:
    """`check-config` in production with 32 times `a` as SECRET_KEY exits 2 naming SECRET_KEY."""
    weak = "a" * 32
    env = _env("production", service_urls.runtime_database_url, service_urls, SECRET_KEY=weak)
    process = start_app(["check-config"], env)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 2, out + err
    assert "SECRET_KEY" in err
    assert weak not in out + err
