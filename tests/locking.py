"""The baked project's uv.lock: one per python_version answer, kept in the template's `.uv-locks/`.

Each answer bakes `requires-python = ">=X.Y"`, and uv resolves a lock for that range (its markers
and wheel lists differ), so one lock cannot serve every answer. The files hold the default bake's
lock with `{{ cookiecutter.project_slug }}` for the project's name; cookiecutter copies them
unrendered and the post-gen hook writes the answer's one as `uv.lock`, with the slug put in.
`python -m tests.locking` (the template's `make lock`) rewrites them all, keeping every pin that
still fits (uv prefers the versions already locked).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.baking import DEFAULT_SLUG, PYTHON_VERSIONS, TEMPLATE_ROOT, bake, find_python

LOCKS = TEMPLATE_ROOT / "{{cookiecutter.project_slug}}" / ".uv-locks"
SLUG_VARIABLE = "{{ cookiecutter.project_slug }}"
# requirements-test.txt installs uv beside this interpreter.
UV = Path(sys.executable).parent / "uv"
STALE_HINT = "uv.lock is out of date with pyproject.toml: run `make lock` at the template root"


def lock_file(python_version: str) -> Path:
    """The template's lock for one python_version answer."""
    return LOCKS / f"python{python_version}.lock"


def locking_python() -> Path:
    """The newest supported Python: it satisfies every answer's `requires-python`."""
    for version in reversed(PYTHON_VERSIONS):
        found = find_python(version)
        if found is not None:
            return found
    raise RuntimeError(f"no Python {' or '.join(PYTHON_VERSIONS)} found on PATH or in pyenv")


def run_uv(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`uv ARGS` in `project` with the newest supported Python, never downloading one."""
    return subprocess.run(
        [str(UV), *args, "--python", str(locking_python())],
        cwd=project,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never", "VIRTUAL_ENV": ""},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def relock(python_version: str, workdir: Path) -> None:
    """Bake `python_version`, `uv lock` it (from the current lock) and store the result."""
    LOCKS.mkdir(exist_ok=True)
    if not lock_file(python_version).exists():
        lock_file(python_version).write_text("")  # the first time: the hook expects one
    project = bake(workdir, python_version=python_version)
    if not (project / "uv.lock").read_text().strip():
        (project / "uv.lock").unlink()
    result = run_uv(project, "lock")
    if result.returncode != 0:
        raise RuntimeError(f"uv lock failed for Python {python_version}:\n{result.stderr}")
    text = (project / "uv.lock").read_text()
    lock_file(python_version).write_text(text.replace(f'"{DEFAULT_SLUG}"', f'"{SLUG_VARIABLE}"'))


def main() -> None:
    with tempfile.TemporaryDirectory() as workdir:
        for python_version in PYTHON_VERSIONS:
            relock(python_version, Path(workdir) / python_version)
            sys.stdout.write(f"wrote {lock_file(python_version).relative_to(TEMPLATE_ROOT)}\n")


if __name__ == "__main__":
    main()
