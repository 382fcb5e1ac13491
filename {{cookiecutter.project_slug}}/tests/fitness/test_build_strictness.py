"""BUILD-CI: the strictness the project promises is configured, and CI runs it."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_warnings_are_errors_and_typing_is_strict() -> None:
    """pytest turns every warning into an error; mypy runs in strict mode."""
    tools = _pyproject()["tool"]
    assert isinstance(tools, dict)
    assert tools["pytest"]["ini_options"]["filterwarnings"] == ["error"]
    assert tools["mypy"]["strict"] is True


def _unexplained_ignores(lines: list[str]) -> list[str]:
    unexplained, section, explained = [], "", False
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("["):
            section, explained = stripped, False
        elif stripped.startswith("#"):
            explained = True
        elif not stripped:
            explained = False
        elif (stripped == "ignore = [" and not lines[index + 1].strip().startswith("#")) or (
            section == "[tool.ruff.lint.per-file-ignores]" and not explained
        ):
            unexplained.append(stripped)
    return unexplained


def test_every_lint_ignore_states_its_reason() -> None:
    """Every ruff ignore, global or per file, sits under a comment saying why."""
    lines = (ROOT / "pyproject.toml").read_text().splitlines()
    assert _unexplained_ignores(lines) == []
    assert _unexplained_ignores(["[tool.ruff.lint.per-file-ignores]", '"x.py" = ["S101"]']) == [
        '"x.py" = ["S101"]'
    ]


def test_ci_blocks_on_lint_and_tests_when_a_workflow_is_shipped() -> None:
    """The generated GitHub workflow (when the `ci` option kept it) runs lint and the suite."""
    workflow = ROOT / ".github" / "workflows" / "ci.yml"
    if not workflow.exists():
        assert not (ROOT / ".github").exists()
        return
    text = workflow.read_text()
    assert "make lint" in text
    assert "make test" in text
    assert "continue-on-error: true" not in text
