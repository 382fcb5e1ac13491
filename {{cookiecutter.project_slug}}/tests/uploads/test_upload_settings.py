"""UPLOADS settings: production without a scanner is refused, since no upload could ever be
served; outside production an unset CLAMD_ADDRESS only keeps uploads quarantined."""

from __future__ import annotations

import pytest

from app.settings import ConfigError, load_settings
from tests.test_settings import GOOD_PRODUCTION


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in GOOD_PRODUCTION:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_production_refuses_to_start_without_clamd_address(env: pytest.MonkeyPatch) -> None:
    for name, value in GOOD_PRODUCTION.items():
        if name != "CLAMD_ADDRESS":
            env.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert set(caught.value.problems) == {"CLAMD_ADDRESS"}
    assert "required in production" in str(caught.value)


def test_development_runs_without_clamd_address(env: pytest.MonkeyPatch) -> None:
    env.setenv("ENVIRONMENT", "development")
    assert load_settings().clamd_address is None


def test_clamd_address_must_name_tcp_or_a_unix_socket(env: pytest.MonkeyPatch) -> None:
    env.setenv("CLAMD_ADDRESS", "clamd.internal:3310")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert set(caught.value.problems) == {"CLAMD_ADDRESS"}
