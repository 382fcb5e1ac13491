"""Every supported Python installs the baked project from its lock and passes its suite.

The lowest supported Python (3.11, the default answer) runs the whole baked suite in
tests/test_baked_suite.py, from the shared .venv that the template's Makefile installs from the
default bake's uv.lock; tests/test_lock.py installs that lock into a fresh clone by `make install`.
Here the highest (3.13): a `python_version=3.13` bake, `make install` (`uv sync --frozen`) on
Python 3.13, and its suite on embedded PostgreSQL and Redis, as on a laptop with neither.
"""

from __future__ import annotations

import os
import subprocess

from tests.baking import (
    PYTHON_VERSIONS,
    SERVICE_VARIABLES,
    assert_suite_passes,
    clean_env,
    find_python,
)
from tests.conftest import Baker
from tests.locking import UV

HIGHEST = PYTHON_VERSIONS[-1]


def test_highest_python_installs_and_passes_on_embedded_services(service_bake: Baker) -> None:
    """`make install` and the suite of a `python_version=3.13` bake, on Python 3.13."""
    python = find_python(HIGHEST)
    assert python is not None, f"Python {HIGHEST} is needed (on PATH or in pyenv) for this test"
    project = service_bake(python_version=HIGHEST)
    # uv on PATH, so `make install` does not bootstrap one (tests/test_lock.py covers that path).
    env = {**clean_env(SERVICE_VARIABLES), "PATH": f"{UV.parent}{os.pathsep}{os.environ['PATH']}"}
    install = subprocess.run(
        ["make", "install", f"PYTHON={python}"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    venv_python = project / ".venv" / "bin" / "python"
    version = subprocess.run(
        [venv_python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.strip() == HIGHEST
    assert_suite_passes(venv_python, project, env)
