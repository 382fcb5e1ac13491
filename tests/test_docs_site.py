"""The template's docs site builds with `mkdocs build --strict` (`make docs` serves it), every
page of docs/ in its navigation; the rule pages follow the rule catalogue."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.baking import TEMPLATE_ROOT


def _nav_pages(config: str) -> set[str]:
    """The pages of mkdocs.yml's `nav:` (each `- Title: page.md` line after it)."""
    nav = config[config.index("\nnav:") :]
    return set(re.findall(r"^\s+- [^\n]*?:\s+(\S+\.md)$", nav, flags=re.MULTILINE))


def test_the_template_docs_site_builds_strictly(tmp_path: Path) -> None:
    """No warning at all: broken links, missing pages and unknown anchors fail the build."""
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=TEMPLATE_ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "rules" / "SEC-TENANT" / "index.html").is_file()


def test_every_template_page_is_in_the_navigation() -> None:
    """A page left out of mkdocs.yml's nav is a page nobody finds."""
    docs = TEMPLATE_ROOT / "docs"
    pages = {str(path.relative_to(docs)) for path in docs.rglob("*.md")}
    assert pages == _nav_pages((TEMPLATE_ROOT / "mkdocs.yml").read_text())


def test_each_rule_page_sits_in_its_family() -> None:
    """`rules/SEC-….md` under Security, `rules/REL-….md` under Reliability, and so on."""
    config = (TEMPLATE_ROOT / "mkdocs.yml").read_text()
    families = {"SEC": "Security", "REL": "Reliability", "DATA": "Data", "OBS": "Observability"}
    families |= {"BUILD": "Build", "API": "API"}
    section = ""
    for line in config[config.index("\nnav:") :].splitlines():
        heading = re.fullmatch(r"\s+- ([A-Za-z ]+):", line)
        if heading:
            section = heading.group(1)
        page = re.search(r"rules/([A-Z]+)-[A-Z-]+\.md$", line)
        if page:
            assert section == families[page.group(1)], line
