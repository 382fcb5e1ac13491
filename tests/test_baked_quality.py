"""Each Python target bakes a project that ruff and strict mypy accept as it is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.baking import PYTHON_VERSIONS, project_env
from tests.conftest import Baker


def _run(project: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *argv],
        cwd=project,
        env=project_env(project),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.parametrize("python_version", PYTHON_VERSIONS)
def test_baked_project_passes_ruff_and_mypy(
    bake: Baker, tmp_path: Path, python_version: str
) -> None:
    """`ruff check`, `ruff format --check` and `mypy` (strict, from the baked config) all pass."""
    project = bake(python_version=python_version)
    for argv in (
        ("ruff", "check", "--no-cache", "."),
        ("ruff", "format", "--check", "--no-cache", "."),
        ("mypy", "--cache-dir", str(tmp_path / "mypy-cache"), "src", "tests"),
    ):
        result = _run(project, *argv)
        assert result.returncode == 0, f"{' '.join(argv)}:\n{result.stdout}{result.stderr}"
