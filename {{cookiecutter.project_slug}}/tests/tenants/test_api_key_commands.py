"""SEC-TENANT: `api-keys create|list|revoke|rotate` print one JSON line, never show a secret they
did not just make, refuse what the keys do not allow, and exit 2 on a dead or empty database."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from app.dev.services import ServiceUrls, drop_database, prepare_database
from app.tenants.service import NewTenant
from tests.processes import env_for, free_port, start_app
from tests.tenants.key_clients import NOTES, Cli


def test_create_prints_one_json_line_with_a_working_key(
    service_urls: ServiceUrls, new_tenant: Callable[[], NewTenant], client: TestClient
) -> None:
    """`api-keys create --tenant ID --expires-in DAYS` prints the new key once; it authenticates."""
    tenant = new_tenant()
    args = ["api-keys", "create", "--tenant", str(tenant.tenant_id), "--name", "ci"]
    process = start_app([*args, "--expires-in", "30"], env_for(service_urls))
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    (line,) = out.strip().splitlines()
    created = json.loads(line)
    assert set(created) == {"key_id", "tenant_id", "api_key", "expires_at"}
    assert created["tenant_id"] == str(tenant.tenant_id)
    assert created["api_key"].startswith(f"ak_{uuid.UUID(created['key_id']).hex}_")
    lifetime = datetime.fromisoformat(created["expires_at"]) - datetime.now(UTC)
    assert timedelta(days=29, hours=23) < lifetime <= timedelta(days=30)
    headers = {"Authorization": f"Bearer {created['api_key']}"}
    assert client.get(NOTES, headers=headers).status_code == 200


def test_list_shows_each_key_and_its_state_but_never_a_secret(
    cli: Cli, new_tenant: Callable[[], NewTenant]
) -> None:
    """`api-keys list` prints one line: every key of the tenant with its state, no secret."""
    tenant, other = new_tenant(), new_tenant()
    status, created, _ = cli("create", "--tenant", str(tenant.tenant_id), "--name", "second")
    assert status == 0
    assert created is not None
    assert cli("revoke", created["key_id"])[0] == 0
    status, listed, _ = cli("list", "--tenant", str(tenant.tenant_id))
    assert status == 0
    assert listed is not None
    assert listed["tenant_id"] == str(tenant.tenant_id)
    keys = {key["name"]: key for key in listed["keys"]}
    assert set(keys) == {"default", "second"}
    assert keys["default"]["status"] == "active"
    assert keys["second"]["status"] == "revoked"
    assert keys["second"]["key_id"] == created["key_id"]
    for key in keys.values():
        assert set(key) == {"key_id", "name", "status", "created_at", "expires_at", "revoked_at"}
    printed = json.dumps(listed)
    for plaintext in (tenant.api_key, created["api_key"]):
        # ak_<key id hex>_<secret>: the secret is URL-safe base64 and may itself hold "_".
        assert plaintext.split("_", 2)[2] not in printed
    assert str(other.tenant_id) not in printed


def test_unknown_and_ended_keys_are_refused_by_name(
    cli: Cli, new_tenant: Callable[[], NewTenant]
) -> None:
    """Revoking an unknown key or rotating a revoked one exits 1 with one line saying why."""
    status, printed, err = cli("revoke", uuid.uuid4().hex)
    assert (status, printed) == (1, None)
    assert "no API key" in err
    assert len(err.strip().splitlines()) == 1
    tenant = new_tenant()
    key_id = tenant.api_key.split("_")[1]
    assert cli("revoke", key_id)[0] == 0
    status, printed, err = cli("rotate", key_id)
    assert (status, printed) == (1, None)
    assert "revoked" in err
    status, printed, err = cli("create", "--tenant", str(uuid.uuid4()))
    assert (status, printed) == (1, None)
    assert "no tenant" in err


@pytest.fixture
def unmigrated_urls(admin_database_url: str, service_urls: ServiceUrls) -> Iterator[ServiceUrls]:
    name = f"unmigrated_{uuid.uuid4().hex[:12]}"
    owner, runtime = prepare_database(admin_database_url, name, recreate=True)
    try:
        yield ServiceUrls(owner, runtime, service_urls.redis_url)
    finally:
        drop_database(admin_database_url, name)


@pytest.mark.parametrize("database", ["unreachable", "unmigrated"])
def test_every_command_exits_2_when_the_database_is_unreachable_or_unmigrated(
    database: str, service_urls: ServiceUrls, request: pytest.FixtureRequest
) -> None:
    """`api-keys list` on a dead or empty database: exit 2, one line, no password."""
    if database == "unmigrated":
        urls: ServiceUrls = request.getfixturevalue("unmigrated_urls")
    else:
        dead = f"postgresql://app_owner:pw-s3cret@127.0.0.1:{free_port()}/nowhere"
        urls = ServiceUrls(dead, dead.replace("app_owner", "app_runtime"), service_urls.redis_url)
    process = start_app(["api-keys", "list", "--tenant", str(uuid.uuid4())], env_for(urls))
    out, err = process.communicate(timeout=60)
    assert process.returncode == 2, out + err
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert "database" in err
    assert "s3cret" not in err
