"""The baked default project's own suite passes, on configured services or else embedded ones."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.baking import SERVICE_VARIABLES, project_env
from tests.conftest import Baker

CONFIGURED = ("TEST_DATABASE_URL", "TEST_REDIS_URL")
# When this environment names real services (CI and the development machines do), the lowest
# Python runs on them; the embedded path (the fresh laptop's) is then proven on the highest Python
# by tests/test_python_versions.py, so the same suite does not run three times on two cores.
MODES = ["configured"] if all(os.environ.get(name) for name in CONFIGURED) else ["embedded"]


@pytest.mark.parametrize("mode", MODES)
def test_baked_suite_passes(service_bake: Baker, mode: str) -> None:
    """`pytest -n 2` in the baked project exits 0, reports passed tests and no failures."""
    project = service_bake()
    drop = (
        SERVICE_VARIABLES
        if mode == "embedded"
        else tuple(name for name in SERVICE_VARIABLES if name not in CONFIGURED)
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider"],
        cwd=project,
        env=project_env(project, drop=drop),
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    output = result.stdout + result.stderr
    tail = "\n".join(output.splitlines()[-60:])
    assert result.returncode == 0, tail
    assert re.search(r"\b[1-9]\d* passed\b", output), tail
    assert not re.search(r"\b\d+ (failed|errors?)\b", output), tail
