"""Shape the generated project to the answers: one `remove_<feature>()` per option, no network.

Options keep or remove whole files; no Jinja decides inside Python. To add an option, write its
`remove_<feature>()` and one line in `main()`. Runs with the generated project as the working
directory; cookiecutter renders this file with Jinja, so each answer is a string literal.
"""

from __future__ import annotations

import shutil
from pathlib import Path

CI = "{{ cookiecutter.ci }}"
PYTHON_VERSION = "{{ cookiecutter.python_version }}"
SLUG = "{{ cookiecutter.project_slug }}"
# One uv.lock per python_version answer: each is resolved for its own `requires-python`, which
# changes the lock (markers, wheels), so no single lock fits every answer. `make lock` at the
# template root writes them (tests/locking.py). They are copied unrendered (rendering 3 MB of TOML
# cost each bake a second), with this in place of the project's name:
SLUG_VARIABLE = "{% raw %}{{ cookiecutter.project_slug }}{% endraw %}"
LOCKS = Path(".uv-locks")


def remove_github_ci() -> None:
    """Drop the GitHub Actions workflows and the rest of `.github/`."""
    shutil.rmtree(Path(".github"), ignore_errors=True)


def keep_lock_of_python_version() -> None:
    """Keep the lock resolved for the python_version answer as `uv.lock`; drop the others."""
    lock = (LOCKS / f"python{PYTHON_VERSION}.lock").read_text(encoding="utf-8")
    Path("uv.lock").write_text(lock.replace(SLUG_VARIABLE, SLUG), encoding="utf-8")
    shutil.rmtree(LOCKS)


def main() -> None:
    keep_lock_of_python_version()
    if CI != "github":
        remove_github_ci()


if __name__ == "__main__":
    main()
