"""`KEY_CACHE_SECONDS`: how long a verified API key is trusted; 0 verifies it on every request."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from app.dev.services import ServiceUrls
from app.main import create_app
from app.settings import ConfigError, Settings, load_settings
from app.tenants.service import NewTenant
from tests.processes import free_port
from tests.tenants.key_clients import NOTES, Cli


def test_with_the_cache_off_a_revoked_key_is_refused_at_the_next_request(
    make_settings: Callable[..., Settings],
    cli: Cli,
    service_urls: ServiceUrls,
    new_tenant: Callable[[], NewTenant],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No notice and no waiting: with `KEY_CACHE_SECONDS=0` nothing remembers the key."""
    settings = make_settings(key_cache_seconds=0)
    tenant = new_tenant()
    headers = {"Authorization": f"Bearer {tenant.api_key}"}
    app = create_app(settings)
    cli.configure(service_urls, settings)
    with TestClient(app) as client:
        assert app.state.api_key_cache is None
        assert client.get(NOTES, headers=headers).status_code == 200
        # The revocation notice cannot be sent: only the database knows the key is revoked.
        monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
        status, revoked, _ = cli("revoke", tenant.api_key.split("_")[1])
        assert status == 0
        assert revoked is not None
        assert revoked["notice_sent"] is False
        assert client.get(NOTES, headers=headers).status_code == 401


def test_the_cache_keeps_a_key_for_the_configured_seconds(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(key_cache_seconds=2.5))
    assert app.state.api_key_cache is not None
    assert app.state.api_key_cache._entries.ttl == 2.5


@pytest.mark.parametrize("value", ["-1", "61", "soon"])
def test_a_bad_key_cache_setting_is_named(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """Beyond 60 s a revoked key would work too long; negative or not a number is a typo."""
    monkeypatch.setenv("KEY_CACHE_SECONDS", value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert set(caught.value.problems) == {"KEY_CACHE_SECONDS"}
