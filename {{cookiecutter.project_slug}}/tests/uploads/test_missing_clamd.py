"""Without clamd (a fresh laptop), the scanner tests are skipped and the end of the run names
them with the install command; with CI set they fail. Run as a real pytest under xdist, since
the summary must be printed by the process that collects every worker's reports."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.processes import PROJECT_ROOT
from tests.uploads.clamd import BANNER

SCANNER_TEST = "tests/uploads/test_scanning.py::test_eicar_is_flagged_and_never_downloadable"


def _pytest_without_clamd(**extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PYTEST_", "CI")) and name != "CLAMD_BINARY"
    }
    env.update(CLAMD_BINARY="", **extra)  # empty: as if clamd were not installed
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "1", SCANNER_TEST],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_laptop_without_clamd_passes_and_names_the_scanner_tests_at_the_end() -> None:
    run = _pytest_without_clamd()
    assert run.returncode == 0, run.stdout[-3000:]
    summary = run.stdout[run.stdout.index(BANNER) :]
    assert f"not run: {SCANNER_TEST}" in summary
    assert "apt-get install clamav-daemon" in summary
    assert "1 skipped" in summary


def test_ci_without_clamd_fails_the_scanner_tests() -> None:
    run = _pytest_without_clamd(CI="true")
    assert run.returncode == 1, run.stdout[-3000:]
    assert "clamd is required when CI is set" in run.stdout
    assert "1 error" in run.stdout
