"""The template's own hooks and tests pass the same ruff and strict mypy as `make lint`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.baking import TEMPLATE_ROOT, clean_env


@pytest.mark.parametrize(
    "argv",
    [
        ("ruff", "check", "--no-cache", "hooks", "tests"),
        ("ruff", "format", "--check", "--no-cache", "hooks", "tests"),
        ("mypy", "--cache-dir=/dev/null", "hooks", "tests"),
    ],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_template_machinery_is_lint_clean(argv: tuple[str, ...]) -> None:
    """CI runs only `make test`, so `make lint`'s checks run here too."""
    result = subprocess.run(
        [sys.executable, "-m", *argv],
        cwd=TEMPLATE_ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
