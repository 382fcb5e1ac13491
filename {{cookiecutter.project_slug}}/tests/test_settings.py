"""BUILD-CONFIG and SEC-SECRETS: settings name every problem at once and never print a value."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import pytest
from pydantic import ValidationError

from app.settings import ConfigError, Settings, load_settings

SECRET = "hunter2-very-secret"
GOOD_PRODUCTION = {
    "ENVIRONMENT": "production",
    "DATABASE_URL": "postgresql://app_runtime:rt-pass@db.internal:5432/acme",
    "DATABASE_OWNER_URL": "postgresql://app_owner:ow-pass@db.internal:5432/acme",
    "REDIS_URL": "redis://cache.internal:6379/0",
    "SECRET_KEY": secrets.token_urlsafe(32),
    "SUPPORT_URL": "https://help.acme.test/",
    "SESSION_SIGNING_KEYS": f"k1:{secrets.token_urlsafe(32)}",
    "CLAMD_ADDRESS": "tcp://clamd.internal:3310",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (*GOOD_PRODUCTION, "LOG_FORMAT", "TRUSTED_PROXIES", "RATE_LIMIT_PER_IP"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _set(env: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        env.setenv(name, value)


def test_valid_production_environment_loads(env: pytest.MonkeyPatch) -> None:
    """A complete production environment loads, with JSON logs and API docs off by default."""
    _set(env, **GOOD_PRODUCTION)
    settings = load_settings()
    assert settings.is_production
    assert settings.effective_log_format == "json"
    assert settings.docs_enabled is False


def test_every_bad_variable_is_named_at_once(env: pytest.MonkeyPatch) -> None:
    """One error lists each bad variable, not just the first one found."""
    _set(
        env,
        ENVIRONMENT="production",
        DATABASE_URL="mysql://root@localhost/x",
        RATE_LIMIT_PER_IP="10/fortnight",
        TRUSTED_PROXIES="10.0.0.0/8,not-a-network",
        TASK_MAX_RETRIES="many",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert set(caught.value.problems) == {
        "DATABASE_URL",
        "DATABASE_OWNER_URL",
        "REDIS_URL",
        "SECRET_KEY",
        "SUPPORT_URL",
        "SESSION_SIGNING_KEYS",
        "CLAMD_ADDRESS",
        "RATE_LIMIT_PER_IP",
        "TRUSTED_PROXIES",
        "TASK_MAX_RETRIES",
    }


@pytest.mark.parametrize(
    "bad_url",
    [
        f"postgresql://app:{SECRET}@",
        f"postgresql://app:{SECRET}@host:notaport/db",
        f"mysql://app:{SECRET}@host/db",
        f"://app:{SECRET}@@@",
    ],
)
def test_malformed_url_never_prints_its_password(env: pytest.MonkeyPatch, bad_url: str) -> None:
    """Neither the message nor the exception's repr contains the password of a malformed URL."""
    _set(env, **{**GOOD_PRODUCTION, "DATABASE_URL": bad_url, "REDIS_URL": f"ftp://u:{SECRET}@x"})
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert {"DATABASE_URL", "REDIS_URL"} <= set(caught.value.problems)
    for text in (str(caught.value), repr(caught.value), repr(caught.value.problems)):
        assert SECRET not in text
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_production_refuses_development_defaults(env: pytest.MonkeyPatch) -> None:
    """The development secret key and support URL are refused in production."""
    _set(env, **GOOD_PRODUCTION)
    env.delenv("SECRET_KEY")
    env.delenv("SUPPORT_URL")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert set(caught.value.problems) == {"SECRET_KEY", "SUPPORT_URL"}


@pytest.mark.parametrize(
    "weak",
    [
        "a" * 32,
        "k" * 40,
        "ab" * 20,
        "abcdefghijklmnopqrstuvwxyz0123456789",
        "0123456789" * 4,
        "password" * 5,
    ],
)
def test_production_refuses_a_secret_key_without_entropy(
    env: pytest.MonkeyPatch, weak: str
) -> None:
    """A long SECRET_KEY of repeats or runs is refused by name, and the value is never shown."""
    _set(env, **{**GOOD_PRODUCTION, "SECRET_KEY": weak})
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert set(caught.value.problems) == {"SECRET_KEY"}
    assert "random" in caught.value.problems["SECRET_KEY"]
    assert weak not in str(caught.value)


def test_generated_secret_keys_of_32_random_bytes_pass() -> None:
    """Keys made as the docs say (32 random bytes, base64url, base64 or hex) are all accepted."""
    fields: dict[str, Any] = {
        name.lower(): value for name, value in GOOD_PRODUCTION.items() if name != "SECRET_KEY"
    }
    for _ in range(100):
        for key in (
            secrets.token_urlsafe(32),
            base64.b64encode(secrets.token_bytes(32)).decode(),
            secrets.token_hex(32),
        ):
            # service_name given: its default asks importlib for every installed distribution.
            Settings(**fields, secret_key=key, service_name="acme-service")


def test_production_refuses_the_owner_role_at_runtime(env: pytest.MonkeyPatch) -> None:
    """Serving as the table owner would bypass row-level security, so production refuses it."""
    _set(env, **{**GOOD_PRODUCTION, "DATABASE_URL": GOOD_PRODUCTION["DATABASE_OWNER_URL"]})
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert set(caught.value.problems) == {"DATABASE_URL"}


def test_plain_postgresql_urls_are_normalised_to_asyncpg() -> None:
    """`postgres://` and `postgresql://` both work; the driver is chosen internally."""
    settings = Settings(
        database_url="postgres://u:p@localhost/db",
        database_owner_url="postgresql://o:p@localhost:5433/db",
    )
    assert settings.database_url is not None
    assert settings.database_url.get_secret_value() == "postgresql+asyncpg://u:p@localhost/db"
    assert str(settings.database_url) == "**********"


def test_secrets_are_masked_in_repr() -> None:
    """Printing the settings object never shows a secret."""
    settings = Settings(secret_key=SECRET, redis_url=f"redis://:{SECRET}@localhost/0")
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings.model_dump())


def test_rate_limits_and_proxies_parse() -> None:
    """Rate limits read as N/unit and trusted proxies as a comma-separated list of CIDRs."""
    settings = Settings(rate_limit_per_ip=" 5 / second ", trusted_proxies="10.0.0.0/8, ::1/128")
    assert settings.rate_limit_per_ip == "5/second"
    assert [str(network) for network in settings.trusted_proxies] == ["10.0.0.0/8", "::1/128"]


def test_visibility_timeout_must_outlast_retries_and_run_time() -> None:
    """A Redis visibility timeout shorter than a countdown plus the time limit is refused."""
    with pytest.raises(ValidationError) as caught:
        Settings(task_retry_max_delay=600, task_time_limit=90, task_visibility_timeout=600)
    assert "TASK_TIME_LIMIT" in str(caught.value)
