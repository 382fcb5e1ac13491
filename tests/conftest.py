"""Fixtures for baking the template in tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Protocol

import pytest

from tests.baking import bake as bake_into


class Baker(Protocol):
    def __call__(self, **answers: str) -> Path: ...


@pytest.fixture
def bake(tmp_path: Path) -> Baker:
    """Bake the template with the given answers over the defaults; each call gets its own folder."""
    numbers = count()

    def baker(**answers: str) -> Path:
        return bake_into(tmp_path / f"bake-{next(numbers)}", **answers)

    return baker


@pytest.fixture(scope="session")
def default_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The defaults baked once per test process; read it, never change it."""
    return bake_into(tmp_path_factory.mktemp("default"))


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A fresh folder with a short path, removed afterwards.

    For bakes that start embedded PostgreSQL: its Unix socket lives in the data directory, and a
    socket path over ~100 characters (pytest's own tmp_path is that deep) cannot be bound.
    """
    base = "/tmp" if Path("/tmp").is_dir() else None  # noqa: S108 (short on purpose; see above)
    folder = Path(tempfile.mkdtemp(prefix="bake-", dir=base))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def service_bake(short_tmp: Path) -> Baker:
    """Like `bake`, under a short path, for projects that will start embedded services."""
    numbers = count()

    def baker(**answers: str) -> Path:
        return bake_into(short_tmp / str(next(numbers)), **answers)

    return baker
