"""OBS-SLO: the Prometheus config and alert rules in ops/prometheus are valid, and their unit tests
(`promtool test rules`) show every alert firing and not firing.

promtool comes with Debian's `prometheus` package (CI installs it). Without it these tests fail
when `CI` is set and are skipped, with the install command, elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML (via uvicorn[standard]) ships no stubs

PROMETHEUS = Path(__file__).resolve().parents[2] / "ops" / "prometheus"
RULES = sorted((PROMETHEUS / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
MISSING = "promtool is not on PATH: install it with `apt-get install prometheus` (Debian/Ubuntu)"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI", "").lower() not in {"", "0", "false"}:
            pytest.fail(f"{MISSING}; CI must install it, so this is a failure, not a skip")
        pytest.skip(MISSING)
    return path


def _run(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_there_are_rules_and_rule_tests() -> None:
    """The globs below find the files, so a rename cannot make the checks vacuous."""
    assert [path.name for path in RULES] == ["slo.yml"]
    assert len(RULE_TESTS) >= 2


def test_alert_rules_are_valid(promtool: str) -> None:
    """`promtool check rules`: every rule file parses and every expression is valid PromQL."""
    result = _run(promtool, "check", "rules", *map(str, RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_pass_their_unit_tests(promtool: str) -> None:
    """`promtool test rules`: each alert fires on the series that should page and stays silent
    on the ones that should not (ops/prometheus/tests/*.yml)."""
    result = _run(promtool, "test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout + result.stderr


def test_every_alert_has_a_unit_test() -> None:
    """No alert in the rules goes untested: each is named by an `alertname:` of the tests."""
    alerts = {
        line.split(":", 1)[1].strip()
        for path in RULES
        for line in path.read_text().splitlines()
        if line.strip().startswith("- alert:")
    }
    tested = {
        line.split(":", 1)[1].strip().split()[0]
        for path in RULE_TESTS
        for line in path.read_text().splitlines()
        if line.strip().startswith("alertname:")
    }
    assert alerts, "no alerts found in ops/prometheus/rules"
    assert alerts <= tested, f"alerts without a promtool unit test: {sorted(alerts - tested)}"


def test_scrape_config_is_valid(promtool: str) -> None:
    """`promtool check config`: prometheus.yml parses and its `rule_files` glob finds the rules."""
    result = _run(promtool, "check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rules/slo.yml" in result.stdout + result.stderr


def test_every_alert_links_to_its_runbook_section() -> None:
    """Each alert's runbook_url ends in `docs/alerts.md#<alert name in lower case>`, and
    docs/alerts.md has a `## <AlertName>` heading, whose GitHub anchor is exactly that."""
    runbook = (PROMETHEUS.parents[1] / "docs" / "alerts.md").read_text()
    headings = {line[3:].strip() for line in runbook.splitlines() if line.startswith("## ")}
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                name = rule["alert"]
                url = rule["annotations"]["runbook_url"]
                assert url.endswith(f"/docs/alerts.md#{name.lower()}"), f"{name}: {url}"
                assert name in headings, f"docs/alerts.md has no `## {name}` section"
                assert rule["labels"]["severity"] in {"page", "ticket"}, name
