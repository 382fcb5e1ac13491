"""An app whose uploads are stored under a folder of the test's own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from app.tenants.service import NewTenant
from app.uploads.dev_clamd import clamd_binary, embedded_clamd
from tests.uploads.clamd import missing_clamd


@pytest.fixture
def upload_dir(tmp_path: Path) -> Path:
    return tmp_path / "uploads"


@pytest.fixture
def upload_app(make_settings: Callable[..., Settings], upload_dir: Path) -> Callable[..., FastAPI]:
    """`create_app` on test settings with UPLOAD_DIR under the test's folder, plus overrides."""

    def build(**overrides: Any) -> FastAPI:
        return create_app(make_settings(upload_dir=upload_dir, **overrides))

    return build


@pytest.fixture
def uploads_client(upload_app: Callable[..., FastAPI]) -> Iterator[TestClient]:
    with TestClient(upload_app(upload_max_bytes=4 << 20), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def alice(new_tenant: Callable[[], NewTenant]) -> NewTenant:
    return new_tenant()


@pytest.fixture
def bob(new_tenant: Callable[[], NewTenant]) -> NewTenant:
    return new_tenant()


@pytest.fixture(scope="session")
def embedded_clamd_address() -> Iterator[str | None]:
    """clamd with the shipped test signature; None when the binary is not installed."""
    if clamd_binary() is None:
        yield None
        return
    with embedded_clamd() as address:
        yield address


@pytest.fixture(scope="module")
def clamd_address(embedded_clamd_address: str | None) -> str:
    """The scanner for tests that need one; without clamd, `missing_clamd` (tests/uploads/clamd.py)
    skips (fails under CI) and tests/conftest.py's summary names the test at the end of the run."""
    if embedded_clamd_address is None:
        missing_clamd()
    return embedded_clamd_address
