"""`create-user EMAIL --tenant ID [--role owner|member]`: the password on stdin, one JSON line,
one line and exit 2 for anything refused."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
from collections.abc import Callable

import pytest

from app.cli import main
from app.db.engine import create_engine
from app.db.session import Database
from app.dev.services import ServiceUrls
from app.tenants.service import NewTenant
from app.tenants.users import check_credentials
from tests.accounts.conftest import PASSWORD
from tests.processes import PROJECT_ROOT, env_for

KEYS = "k-old:" + "o" * 32
DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def _run(args: list[str], env: dict[str, str], password: str) -> tuple[int, str, str]:
    """`python -m app ARGS` with `password` piped on stdin, as an operator's script would."""
    command = [sys.executable, "-m", "app", *args]
    process = subprocess.run(
        command,
        input=password + "\n",
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return process.returncode, process.stdout, process.stderr


def _create_user(
    service_urls: ServiceUrls, *args: str, password: str = PASSWORD
) -> tuple[int, str, str]:
    return _run(["create-user", *args], env_for(service_urls), password)


async def _login(service_urls: ServiceUrls, email: str, password: str, tenant: uuid.UUID) -> str:
    engine = create_engine(service_urls.runtime_database_url)
    try:
        grant = await check_credentials(Database(engine), email, password, tenant)
    finally:
        await engine.dispose()
    return grant.role


async def test_create_user_reads_stdin_and_prints_one_json_line(
    service_urls: ServiceUrls, new_tenant: Callable[[], NewTenant]
) -> None:
    """The new user can log in with the password piped in; the role defaults to member."""
    tenant = new_tenant().tenant_id
    email = f"ann-{uuid.uuid4().hex[:8]}@Example.com"
    args = [email, "--tenant", str(tenant)]
    assert PASSWORD not in " ".join(args)  # never on the command line, seen by `ps`
    status, out, err = _create_user(service_urls, *args)
    assert status == 0, err
    (line,) = out.strip().splitlines()
    printed = json.loads(line)
    assert set(printed) == {"user_id", "tenant_id", "role", "new_user"}
    assert (printed["tenant_id"], printed["role"], printed["new_user"]) == (
        str(tenant),
        "member",
        True,
    )
    uuid.UUID(printed["user_id"])
    assert PASSWORD not in out + err
    assert await _login(service_urls, email.lower(), PASSWORD, tenant) == "member"


async def test_an_existing_email_gains_the_membership_and_keeps_its_password(
    service_urls: ServiceUrls, new_tenant: Callable[[], NewTenant]
) -> None:
    """Same email in another case: same user id, new_user false, the first password still works;
    the same membership twice is refused."""
    first, second = new_tenant().tenant_id, new_tenant().tenant_id
    email = f"bo-{uuid.uuid4().hex[:8]}@example.com"
    _, out, _ = _create_user(service_urls, email, "--tenant", str(first))
    created = json.loads(out)
    status, out, err = _create_user(
        service_urls,
        email.upper(),
        "--tenant",
        str(second),
        "--role",
        "owner",
        password="a different long passphrase",
    )
    assert status == 0, err
    added = json.loads(out)
    assert (added["user_id"], added["role"], added["new_user"]) == (
        created["user_id"],
        "owner",
        False,
    )
    assert await _login(service_urls, email, PASSWORD, second) == "owner"
    status, out, err = _create_user(service_urls, email, "--tenant", str(second))
    assert (status, out) == (2, "")
    assert "already a member" in err


def test_weak_passwords_unknown_tenants_and_bad_emails_exit_2_with_one_line(
    service_urls: ServiceUrls, new_tenant: Callable[[], NewTenant]
) -> None:
    """Each refusal: exit 2, nothing on stdout, one line on stderr naming the problem."""
    tenant = str(new_tenant().tenant_id)
    email = f"cy-{uuid.uuid4().hex[:8]}@example.com"
    cases = [
        ((email, "--tenant", tenant), "short", "at least 15 characters"),
        ((email, "--tenant", tenant), email, "must not be the email"),
        ((email, "--tenant", str(uuid.uuid4())), PASSWORD, "no tenant"),
        (("not-an-email", "--tenant", tenant), PASSWORD, "must look like"),
    ]
    for args, password, message in cases:
        status, out, err = _create_user(service_urls, *args, password=password)
        assert (status, out) == (2, ""), err
        (line,) = err.strip().splitlines()
        assert message in line
        assert password not in line or password == PASSWORD


def test_an_unreachable_database_exits_2_with_one_line(service_urls: ServiceUrls) -> None:
    """An unreachable database: one line naming the fix, no traceback."""
    env = env_for(service_urls)
    env["DATABASE_OWNER_URL"] = "postgresql://nobody@127.0.0.1:1/none"
    args = ["create-user", "dee@example.com", "--tenant", str(uuid.uuid4())]
    status, out, err = _run(args, env, PASSWORD)
    assert (status, out) == (2, "")
    (line,) = err.strip().splitlines()
    assert "database unreachable" in line


# (argv, stdin, environment changes, exit status, JSON lines on stdout, stderr (event, level)s)
Outcome = tuple[list[str], str, dict[str, str], int, int, list[tuple[str, str]]]


REFUSED = ("create_user_refused", "error")
FAILED = ("command_failed", "error")
BAD_CONFIG = ("invalid_configuration", "error")
KEY_REFUSED = ("signing_key_change_refused", "error")
API_KEY_REFUSED = ("api_key_command_refused", "error")
NO_NOTICE = ("key_change_notice_not_sent", "warning")


def _outcomes(tenant: NewTenant, dead_redis: str) -> list[Outcome]:
    user = ["create-user", f"eve-{uuid.uuid4().hex[:8]}@example.com", "--tenant"]
    tenant_id = str(tenant.tenant_id)
    key_id = tenant.api_key.split("_")[1]
    listing = ["api-keys", "list", "--tenant", tenant_id]
    unreachable = {"DATABASE_OWNER_URL": "postgresql://nobody@127.0.0.1:1/none"}
    bad = {"RATE_LIMIT_PER_IP": "lots"}
    return [
        ([*user, tenant_id], PASSWORD, {}, 0, 1, []),
        ([*user, tenant_id], "short", {}, 2, 0, [REFUSED]),
        ([*user, str(uuid.uuid4())], PASSWORD, {}, 2, 0, [REFUSED]),
        ([*user, tenant_id], PASSWORD, unreachable, 2, 0, [FAILED]),
        ([*user, tenant_id], PASSWORD, bad, 2, 0, [BAD_CONFIG]),
        (["auth", "rotate-keys"], "", {}, 0, 1, []),
        (["auth", "rotate-keys"], "", {"SESSION_SIGNING_KEYS": "no-colon"}, 2, 0, [KEY_REFUSED]),
        (["auth", "retire-key", "k-gone"], "", {}, 2, 0, [KEY_REFUSED]),
        (listing, "", {}, 0, 1, []),
        (listing, "", bad, 2, 0, [BAD_CONFIG]),
        (["api-keys", "revoke", uuid.uuid4().hex], "", {}, 1, 0, [API_KEY_REFUSED]),
        (["api-keys", "revoke", key_id], "", {"REDIS_URL": dead_redis}, 0, 1, [NO_NOTICE]),
    ]


def test_with_json_logs_every_line_of_every_outcome_is_one_json_record(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    service_urls: ServiceUrls,
    new_tenant: Callable[[], NewTenant],
) -> None:
    """LOG_FORMAT=json: every refusal, failure and warning of `create-user`, `auth` and
    `api-keys` is one JSON record on stderr (event, level, message); a success is one JSON line
    on stdout, and nothing else is printed."""
    base = {**env_for(service_urls), "LOG_FORMAT": "json", "SESSION_SIGNING_KEYS": KEYS}
    outcomes = _outcomes(new_tenant(), DEAD_REDIS)
    changed = {name for outcome in outcomes for name in outcome[2]}
    seen = []
    for argv, stdin, changes, status, printed, said in outcomes:
        for name in changed:
            monkeypatch.delenv(name, raising=False)
        for name, value in {**base, **changes}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin + "\n"))
        capsys.readouterr()
        exit_status = main(argv)
        out, err = capsys.readouterr()
        records = [json.loads(line) for line in err.splitlines()]
        assert all(set(record) >= {"event", "level", "message"} for record in records), err
        outcome = (exit_status, len([json.loads(line) for line in out.splitlines()]))
        seen.append((argv[:2], outcome, [(r["event"], r["level"]) for r in records]))
        assert seen[-1] == (argv[:2], (status, printed), said), out + err
