"""Template updates reach a baked project: `cruft create` records the template commit in
`.cruft.json`, and `cruft update` later applies the template's changes since that commit without
losing the project's own edits (docs/updating.md in the baked project)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.baking import DEFAULT_SLUG, TEMPLATE_ROOT, clean_env

TEMPLATE_DIR = "{{cookiecutter.project_slug}}"
# The template as users get it: what a clone of the repository holds, minus the build outputs.
TEMPLATE_PARTS = ("cookiecutter.json", "hooks", TEMPLATE_DIR)
IGNORED = shutil.ignore_patterns(
    ".venv", ".devservices", "__pycache__", ".ruff_cache", ".mypy_cache"
)
USER_LINE = "Our team's on-call rota lives in the wiki."
TEMPLATE_LINE = "A line the template added in a later release."


def git(cwd: Path, *argv: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.strip()


def cruft(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cruft", *argv],
        cwd=cwd,
        env={**clean_env(), "HOME": str(cwd)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def template_repository(root: Path) -> Path:
    """A git repository holding this template, committed once."""
    repository = root / "template"
    repository.mkdir()
    for part in TEMPLATE_PARTS:
        source = TEMPLATE_ROOT / part
        if source.is_dir():
            shutil.copytree(source, repository / part, ignore=IGNORED)
        else:
            shutil.copy2(source, repository / part)
    git(repository, "init", "--quiet", "--initial-branch=main")
    git(repository, "add", "--all")
    git(repository, "commit", "--quiet", "-m", "A")
    return repository


def append(path: Path, line: str) -> None:
    path.write_text(path.read_text() + f"\n{line}\n")


def test_an_update_brings_the_template_change_and_keeps_the_users(tmp_path: Path) -> None:
    """Bake at commit A with cruft, edit the project's README top, change the template's README
    bottom as commit B, run `cruft update`: both edits are there, nothing was rejected."""
    template = template_repository(tmp_path)
    commit_a = git(template, "rev-parse", "HEAD")
    created = cruft(tmp_path, "create", str(template), "--no-input", "--output-dir", "out")
    assert created.returncode == 0, created.stdout + created.stderr
    project = tmp_path / "out" / DEFAULT_SLUG
    recorded = json.loads((project / ".cruft.json").read_text())
    assert recorded["commit"] == commit_a
    git(project, "init", "--quiet", "--initial-branch=main")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "-m", "baked")

    readme = project / "README.md"
    lines = readme.read_text().splitlines()
    readme.write_text("\n".join([lines[0], "", USER_LINE, *lines[1:]]) + "\n")
    git(project, "commit", "--quiet", "--all", "-m", "our change")

    append(template / TEMPLATE_DIR / "README.md", TEMPLATE_LINE)
    git(template, "commit", "--quiet", "--all", "-m", "B")
    commit_b = git(template, "rev-parse", "HEAD")

    updated = cruft(project, "update", "--skip-apply-ask", "--project-dir", str(project))
    assert updated.returncode == 0, updated.stdout + updated.stderr
    text = readme.read_text()
    assert USER_LINE in text
    assert TEMPLATE_LINE in text
    assert not list(project.rglob("*.rej"))
    assert json.loads((project / ".cruft.json").read_text())["commit"] == commit_b


def test_a_project_already_at_the_template_commit_is_up_to_date(tmp_path: Path) -> None:
    """`cruft check` passes on a fresh bake and fails once the template moves on."""
    template = template_repository(tmp_path)
    created = cruft(tmp_path, "create", str(template), "--no-input", "--output-dir", "out")
    assert created.returncode == 0, created.stdout + created.stderr
    project = tmp_path / "out" / DEFAULT_SLUG
    assert cruft(project, "check", "--project-dir", str(project)).returncode == 0
    append(template / TEMPLATE_DIR / "README.md", TEMPLATE_LINE)
    git(template, "commit", "--quiet", "--all", "-m", "B")
    assert cruft(project, "check", "--project-dir", str(project)).returncode != 0
