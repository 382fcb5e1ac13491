"""Scanner tests without clamd: skipped on a laptop and listed loudly at the end of the run;
failed when `CI` is set, so CI proves the scanner wherever it runs."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

from app.uploads.dev_clamd import INSTALL_HINT

NO_CLAMD = "scanner test not run: clamd is not installed"
BANNER = "SCANNER TESTS DID NOT RUN"


def ci_is_set() -> bool:
    """`CI` as GitHub Actions and most CI services set it (`true`)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def missing_clamd() -> NoReturn:
    """Fail under CI; elsewhere skip with the reason the end-of-run summary looks for."""
    if ci_is_set():
        pytest.fail(f"clamd is required when CI is set; {INSTALL_HINT}", pytrace=False)
    pytest.skip(f"{NO_CLAMD}: {INSTALL_HINT}")


def report_scanner_tests_not_run(terminalreporter: pytest.TerminalReporter) -> None:
    """Name every scanner test skipped for want of clamd, and how to install it."""
    skipped = [
        report.nodeid
        for report in terminalreporter.stats.get("skipped", [])
        if NO_CLAMD in str(getattr(report, "longrepr", ""))
    ]
    if not skipped:
        return
    terminalreporter.section(BANNER, sep="!", red=True, bold=True)
    for nodeid in skipped:
        terminalreporter.line(f"  not run: {nodeid}", red=True)
    terminalreporter.line(
        f"  {len(skipped)} scanner test(s) did not run; {INSTALL_HINT}", red=True, bold=True
    )
    terminalreporter.line(
        "  With CI=true they fail instead. CLAMD_BINARY=<path> names a clamd.", red=True
    )
