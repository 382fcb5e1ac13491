"""The house's layout: a folder per concern, and docs/architecture.md's map says which is which."""

from __future__ import annotations

import re
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
APP = PROJECT / "src" / "app"
ARCHITECTURE = PROJECT / "docs" / "architecture.md"
ENTRY_POINTS = {"__init__.py", "__main__.py", "main.py", "settings.py", "cli.py"}
# One map entry: its indentation, then a path (a folder ends in "/", a module in ".py").
MAP_ENTRY = re.compile(r"^(?P<indent>(?:  )?)(?P<path>[\w./-]+(?:/|\.py))(?: |$)")


def _layout_map() -> list[str]:
    """The project-relative paths named in the `## Layout` code block of docs/architecture.md."""
    section = ARCHITECTURE.read_text().split("## Layout", 1)[1]
    block = section.split("```text\n", 1)[1].split("```", 1)[0]
    paths: list[str] = []
    parent = ""
    for line in block.splitlines():
        entry = MAP_ENTRY.match(line)
        if entry is None:
            continue  # the continuation of a description
        path = entry["path"]
        if entry["indent"]:
            paths.append(parent + path)
        else:
            parent = path
            paths.append(path)
    return paths


def test_only_the_entry_points_live_at_the_package_root() -> None:
    """Everything else belongs in the folder of what it serves (observability/, http/, …)."""
    loose = {path.name for path in APP.glob("*.py")} - ENTRY_POINTS
    assert loose == set()


def test_every_path_in_the_architecture_map_exists() -> None:
    named = _layout_map()
    assert "src/app/observability/" in named  # the map was found and read
    assert [path for path in named if not (PROJECT / path).exists()] == []


def test_every_package_is_in_the_architecture_map() -> None:
    named = set(_layout_map())
    packages = {f"src/app/{init.parent.name}/" for init in APP.glob("*/__init__.py")}
    assert packages - named == set()
