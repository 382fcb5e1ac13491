"""Fixtures of the API key lifecycle tests: the console script and a serving app."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.auth.principal import ApiKeyCache
from app.dev.services import ServiceUrls
from app.main import create_app
from app.settings import Settings
from tests.tenants.key_clients import Cli, Serving


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], service_urls: ServiceUrls
) -> Cli:
    runner = Cli(monkeypatch, capsys)
    runner.configure(service_urls)
    return runner


@pytest.fixture
def serving(settings: Settings, cli: Cli, service_urls: ServiceUrls) -> Iterator[Serving]:
    clock = [1_000.0]
    app = create_app(settings)
    app.state.api_key_cache = ApiKeyCache(clock=lambda: clock[0])
    cli.configure(service_urls, settings)
    with TestClient(app) as client:
        listener = app.state.key_change_listener
        deadline = time.monotonic() + 10
        while not listener.subscribed.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert listener.subscribed.is_set()
        yield Serving(client, clock)
