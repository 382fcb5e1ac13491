"""The docs site builds with `mkdocs build --strict`: every page in the navigation, no broken
link (`make docs` serves the same site)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.processes import PROJECT_ROOT


def _build(project: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=project,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _nav_pages(config: str) -> set[str]:
    """The pages of mkdocs.yml's `nav:` (each `- Title: page.md` line after it)."""
    nav = config[config.index("\nnav:") :]
    return set(re.findall(r"^\s+- [^\n]*?:\s+(\S+\.md)$", nav, flags=re.MULTILINE))


def test_the_docs_site_builds_strictly(tmp_path: Path) -> None:
    """No warning at all: broken links, missing pages and unknown anchors fail the build."""
    done = _build(PROJECT_ROOT, tmp_path / "site")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "site" / "compliance" / "index.html").is_file()


def test_every_page_is_in_the_navigation() -> None:
    """A page left out of mkdocs.yml's nav is a page nobody finds."""
    docs = PROJECT_ROOT / "docs"
    pages = {str(path.relative_to(docs)) for path in docs.rglob("*.md")}
    assert pages == _nav_pages((PROJECT_ROOT / "mkdocs.yml").read_text())


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    """The strictness is real: one link to a page that does not exist stops the build."""
    copy = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT / "docs", copy / "docs")
    shutil.copy(PROJECT_ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    with (copy / "docs" / "index.md").open("a") as page:
        page.write("\nSee [the missing page](no-such-page.md).\n")
    done = _build(copy, tmp_path / "site")
    assert done.returncode != 0
    assert "no-such-page.md" in done.stderr
