"""The baked project's compliance matrix covers every rule and points at things that exist.

`docs/compliance.md` holds a markdown table `| ID | Status | Implemented in | Proven by |`. Every
backticked path under src/, tests/, migrations/, ops/ or docs/ must exist in the baked project, and
every `tests/…py::test_name` must name a test function in that file.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

RULE_IDS = (
    "SEC-HEADERS",
    "SEC-TOKENS",
    "SEC-JWT",
    "SEC-CSRF",
    "SEC-SANITIZE",
    "SEC-WEBHOOKS",
    "SEC-TENANT",
    "SEC-SECRETS",
    "REL-RESILIENCE",
    "REL-RATELIMIT",
    "REL-CACHE",
    "REL-WORKERS",
    "REL-QUERY",
    "DATA-MIGRATIONS",
    "DATA-TX",
    "DATA-IDEMPOTENCY",
    "DATA-LIFECYCLE",
    "OBS-LOGGING",
    "OBS-TRACING",
    "OBS-METRICS",
    "OBS-SLO",
    "OBS-ERRORS",
    "BUILD-CONFIG",
    "BUILD-CONTAINER",
    "BUILD-CI",
    "API-CONTRACTS",
    "API-CACHING",
    "UPLOADS",
    "N/A-FRONTEND",
)
STATUSES = {"built", "partial", "planned", "n/a"}
HEADER = ["ID", "Status", "Implemented in", "Proven by"]
PATH_PREFIXES = ("src/", "tests/", "migrations/", "ops/", "docs/")
BACKTICKED = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class Row:
    line: int
    rule: str
    status: str
    implemented_in: str
    proven_by: str

    def references(self) -> list[str]:
        """Backticked project paths in the two evidence cells."""
        cells = f"{self.implemented_in} {self.proven_by}"
        return [ref for ref in BACKTICKED.findall(cells) if ref.startswith(PATH_PREFIXES)]

    def tests(self) -> list[str]:
        """`tests/…::name` references in the "Proven by" cell."""
        return [
            ref
            for ref in BACKTICKED.findall(self.proven_by)
            if ref.startswith("tests/") and "::" in ref
        ]


def split_cells(line: str) -> list[str]:
    """The cells of a markdown table line; `|` inside backticks or escaped as `\\|` stays."""
    cells: list[str] = []
    current: list[str] = []
    in_code = False
    index = 0
    body = line.strip().removeprefix("|").removesuffix("|")
    while index < len(body):
        char = body[index]
        if char == "\\" and body[index + 1 : index + 2] == "|":
            current.append("|")
            index += 2
            continue
        if char == "`":
            in_code = not in_code
        if char == "|" and not in_code:
            cells.append("".join(current).strip())
            current = []
        else:
            current.append(char)
        index += 1
    cells.append("".join(current).strip())
    return cells


def parse_matrix(text: str) -> list[Row]:
    """Rows of the first table whose header is exactly HEADER; [] when there is none."""
    lines = text.splitlines()
    for start, line in enumerate(lines):
        if not line.lstrip().startswith("|") or split_cells(line) != HEADER:
            continue
        rows: list[Row] = []
        for number, row_line in enumerate(lines[start + 2 :], start=start + 3):
            if not row_line.lstrip().startswith("|"):
                break
            cells = split_cells(row_line)
            cells += [""] * (len(HEADER) - len(cells))
            # `**built**` or `` `SEC-TENANT` `` is the same ID or status, only decorated.
            rule, status = (cell.strip("`*_ ") for cell in cells[:2])
            rows.append(Row(number, rule, status, cells[2], cells[3]))
        return rows
    return []


def defined_functions(path: Path) -> set[str]:
    """`name` and `Class::name` for every function defined in a Python file."""
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    for node in tree.body:
        if isinstance(node, functions):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.update(
                f"{node.name}::{item.name}" for item in node.body if isinstance(item, functions)
            )
    return names


def missing_or_repeated_rules(rows: list[Row]) -> list[str]:
    """Rules with no row, or with more than one."""
    seen = [row.rule for row in rows]
    missing = [f"{rule}: no row" for rule in RULE_IDS if rule not in seen]
    repeated = [
        f"{rule}: {seen.count(rule)} rows" for rule in sorted(set(seen)) if seen.count(rule) > 1
    ]
    return missing + repeated


def unknown_statuses(rows: list[Row]) -> list[str]:
    """Rows whose status is not one of STATUSES."""
    return [
        f"line {row.line}: {row.rule} {row.status!r}" for row in rows if row.status not in STATUSES
    ]


def missing_paths(rows: list[Row], project: Path) -> list[str]:
    """Backticked project paths (a glob is fine) that do not exist in `project`."""
    missing: list[str] = []
    for row in rows:
        for ref in row.references():
            path = ref.split("::", 1)[0]
            found = any(project.glob(path)) if "*" in path else (project / path).exists()
            if not found:
                missing.append(f"line {row.line}: {row.rule} → {ref}")
    return missing


def unknown_tests(rows: list[Row], project: Path) -> list[str]:
    """`tests/x.py::name` references whose file does not define `name`."""
    unknown: list[str] = []
    for row in rows:
        for ref in row.tests():
            path, name = ref.split("::", 1)
            name = name.split("[", 1)[0]  # a parametrized id names the same function
            file = project / path
            if not file.is_file() or name not in defined_functions(file):
                unknown.append(f"line {row.line}: {row.rule} → {ref}")
    return unknown


def unproven_rules(rows: list[Row]) -> list[str]:
    """Built or partial rows that name no `tests/…::test`."""
    return [
        f"line {row.line}: {row.rule} ({row.status})"
        for row in rows
        if row.status in {"built", "partial"} and not row.tests()
    ]


@pytest.fixture(scope="module")
def rows(default_project: Path) -> list[Row]:
    """The matrix rows of the baked default project's docs/compliance.md."""
    matrix = default_project / "docs" / "compliance.md"
    assert matrix.is_file(), "docs/compliance.md is missing from the baked project"
    parsed = parse_matrix(matrix.read_text())
    assert parsed, f"no table with header | {' | '.join(HEADER)} | in docs/compliance.md"
    return parsed


def test_split_cells_keeps_pipes_in_code() -> None:
    """A `|` inside backticks or escaped as `\\|` does not start a new cell."""
    assert split_cells("| A | `x | y` | b \\| c |") == ["A", "`x | y`", "b | c"]


def test_checks_catch_a_broken_matrix(tmp_path: Path) -> None:
    """Each check reports its own defect in a deliberately broken matrix, and only that."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "real.py").write_text("")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_real.py").write_text(
        "def test_one() -> None: ...\nclass TestGroup:\n    def test_two(self) -> None: ...\n"
    )
    proof = "`tests/test_real.py::test_one`, `tests/test_real.py::TestGroup::test_two`"
    good = f"| `src/real.py` | {proof} |"
    lines = ["Intro.", "", "| ID | Status | Implemented in | Proven by |", "|---|---|---|---|"]
    lines += [f"| {rule} | built {good}" for rule in RULE_IDS if rule not in {"SEC-JWT", "UPLOADS"}]
    lines += [
        "| SEC-JWT | done | `src/real.py` | `tests/test_real.py::test_one[case]` |",
        "| UPLOADS | partial | `src/gone.py`, `ops/*.yml` | `tests/test_real.py::test_three` |",
        "| UPLOADS | planned | — | — |",
        "| OBS-SLO | built | `src/real.py` | `tests/test_real.py` |",
        "| **N/A-FRONTEND** | `n/a` | — | — |",
        "",
        "| ID | Status | Implemented in | Proven by |",
        "| NOT-READ | built | | |",
    ]
    rows = parse_matrix("\n".join(lines))
    assert missing_or_repeated_rules(rows) == [
        "N/A-FRONTEND: 2 rows",
        "OBS-SLO: 2 rows",
        "UPLOADS: 2 rows",
    ]
    assert [problem.split(": ", 1)[1] for problem in unknown_statuses(rows)] == ["SEC-JWT 'done'"]
    assert [problem.split("→ ")[1] for problem in missing_paths(rows, tmp_path)] == [
        "src/gone.py",
        "ops/*.yml",
    ]
    assert [problem.split("→ ")[1] for problem in unknown_tests(rows, tmp_path)] == [
        "tests/test_real.py::test_three"
    ]
    assert [problem.split(": ", 1)[1] for problem in unproven_rules(rows)] == ["OBS-SLO (built)"]


def test_every_rule_has_exactly_one_row(rows: list[Row]) -> None:
    """Each rule ID of the guide appears in exactly one row."""
    assert missing_or_repeated_rules(rows) == []


def test_statuses_are_known(rows: list[Row]) -> None:
    """Status is one of built, partial, planned, n/a."""
    assert unknown_statuses(rows) == []


def test_referenced_paths_exist(rows: list[Row], default_project: Path) -> None:
    """Every backticked src/, tests/, migrations/, ops/ or docs/ path exists when baked."""
    assert missing_paths(rows, default_project) == []


def test_referenced_tests_exist(rows: list[Row], default_project: Path) -> None:
    """Every `tests/x.py::test_name` names a function defined in that file."""
    assert unknown_tests(rows, default_project) == []


def test_built_rules_name_a_test(rows: list[Row]) -> None:
    """A built or partial rule names at least one `tests/…::test` that proves it."""
    assert unproven_rules(rows) == []
