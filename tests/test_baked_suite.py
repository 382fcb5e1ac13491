"""The baked default project's own suite passes, on configured services or else embedded ones."""

from __future__ import annotations

import os
import sys

import pytest

from tests.baking import SERVICE_VARIABLES, assert_suite_passes, project_env
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
    assert_suite_passes(sys.executable, project, project_env(project, drop=drop))
