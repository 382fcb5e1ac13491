"""Shape the generated project to the answers: one `remove_<feature>()` per option, no network.

Options keep or remove whole files; no Jinja decides inside Python. To add an option, write its
`remove_<feature>()` and one line in `main()`. Runs with the generated project as the working
directory; cookiecutter renders this file with Jinja, so each answer is a string literal.
"""

from __future__ import annotations

import shutil
from pathlib import Path

CI = "{{ cookiecutter.ci }}"


def remove_github_ci() -> None:
    """Drop the GitHub Actions workflows and the rest of `.github/`."""
    shutil.rmtree(Path(".github"), ignore_errors=True)


def main() -> None:
    if CI != "github":
        remove_github_ci()


if __name__ == "__main__":
    main()
