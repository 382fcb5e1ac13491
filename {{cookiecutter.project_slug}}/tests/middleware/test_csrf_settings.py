"""SEC-CSRF: ALLOWED_ORIGINS holds origins only, compared as browsers serialize them."""

from __future__ import annotations

import pytest

from app.settings import ConfigError, load_settings


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment of a settings test; SERVICE_NAME spares the installed-package scan."""
    monkeypatch.setenv("SERVICE_NAME", "csrf-test")
    return monkeypatch


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("https://app.example.com/", "entry 1 is not an origin"),
        ("https://ok.example.com,app.example.com", "entry 2 is not an origin"),
        ("*", "entry 1 is not an origin"),
        ("null", "entry 1 is not an origin"),
        ("ftp://files.example.com", "entry 1 is not an origin"),
        ("https://user@app.example.com", "entry 1 is not an origin"),
    ],
)
def test_allowed_origins_must_be_origins(
    environ: pytest.MonkeyPatch, value: str, problem: str
) -> None:
    """Each entry is scheme://host[:port]: a path, a wildcard or credentials stop the start."""
    environ.setenv("ALLOWED_ORIGINS", value)
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert refused.value.problems["ALLOWED_ORIGINS"].startswith(problem)
    assert value not in str(refused.value)


def test_allowed_origins_are_normalised_as_browsers_send_them(
    environ: pytest.MonkeyPatch,
) -> None:
    """Case and a default port do not matter: `Origin` is compared with the serialized form."""
    environ.setenv("ALLOWED_ORIGINS", "HTTPS://App.Example.com:443, http://[::1]:8080")
    settings = load_settings()
    assert settings.allowed_origins == ["https://app.example.com", "http://[::1]:8080"]


def test_production_refuses_a_plain_http_origin(environ: pytest.MonkeyPatch) -> None:
    """A page served over HTTP can be rewritten on the network: production allows none."""
    environ.setenv("ENVIRONMENT", "production")
    environ.setenv("ALLOWED_ORIGINS", "https://app.example.com,http://localhost:3000")
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert "entry 2 is an http:// origin" in refused.value.problems["ALLOWED_ORIGINS"]
