"""Drive `api-keys` in-process and a serving app whose key cache only ends entries by notice or
expiry: the tools of the API key lifecycle tests."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.cli import main
from app.dev.services import ServiceUrls
from app.settings import Settings

NOTES = "/api/v1/notes"


class Cli:
    """Runs `app api-keys …` in this process, with the environment an operator would set."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        self.monkeypatch = monkeypatch
        self.capsys = capsys

    def configure(self, urls: ServiceUrls, settings: Settings | None = None) -> None:
        self.monkeypatch.setenv("ENVIRONMENT", "test")
        self.monkeypatch.setenv("DATABASE_URL", urls.runtime_database_url)
        self.monkeypatch.setenv("DATABASE_OWNER_URL", urls.owner_database_url)
        self.monkeypatch.setenv("REDIS_URL", urls.redis_url)
        if settings is not None:
            self.monkeypatch.setenv("REDIS_KEY_PREFIX", settings.key_prefix)

    def __call__(self, *args: str) -> tuple[int, dict[str, Any] | None, str]:
        """(exit status, the one JSON line printed or None, stderr)."""
        self.capsys.readouterr()
        status = main(["api-keys", *args])
        out, err = self.capsys.readouterr()
        # A serving app in this process logs to the same stdout: its lines carry an `event`.
        printed = [json.loads(line) for line in out.splitlines() if line.strip()]
        lines = [line for line in printed if "event" not in line]
        assert len(lines) <= 1, out
        return status, lines[0] if lines else None, err


class Serving:
    """A running app whose key cache never expires an entry by age (its clock is frozen), so
    only a revocation notice or a key's own expiry can end a cached key."""

    def __init__(self, client: TestClient, clock: list[float]) -> None:
        self.client = client
        self.clock = clock

    def status(self, api_key: str) -> int:
        response = self.client.get(NOTES, headers={"Authorization": f"Bearer {api_key}"})
        return response.status_code

    def status_within(self, api_key: str, expected: int, seconds: float) -> int:
        """Poll until the key answers `expected` or `seconds` pass; the last status."""
        deadline = time.monotonic() + seconds
        status = self.status(api_key)
        while status != expected and time.monotonic() < deadline:
            time.sleep(0.02)
            status = self.status(api_key)
        return status


def until(moment: str) -> None:
    time.sleep(max(0.0, (datetime.fromisoformat(moment) - datetime.now(UTC)).total_seconds()))
