"""Validate the answers before anything is generated.

Cookiecutter renders this file with Jinja, so each answer below is a plain string literal once
rendered. Every bad answer is reported at once, on stderr, and the hook exits 1: cookiecutter then
raises `FailedHookException` and removes the half-made project.
"""

from __future__ import annotations

import re
import sys

# Raw triple-quoted so quotes and backslashes in an answer cannot break this file.
ANSWERS = {
    "project_slug": r"""{{ cookiecutter.project_slug }}""",
    "author_name": r"""{{ cookiecutter.author_name }}""",
    "author_email": r"""{{ cookiecutter.author_email }}""",
    "description": r"""{{ cookiecutter.description }}""",
    "python_version": r"""{{ cookiecutter.python_version }}""",
    "ci": r"""{{ cookiecutter.ci }}""",
}

SLUG = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
PYTHON_VERSIONS = ("3.11", "3.12", "3.13")
CI_CHOICES = ("github", "none")
# Written into pyproject.toml as basic strings, where these characters would need escaping.
TOML_UNSAFE = ('"', "\\")


def problems(answers: dict[str, str]) -> list[str]:
    """Return one message per bad answer; an empty list means every answer is acceptable."""
    found: list[str] = []
    slug = answers["project_slug"]
    if not SLUG.match(slug):
        found.append(
            f"project_slug {slug!r} must be lowercase letters, digits and single hyphens, "
            "starting with a letter (for example 'acme-service')"
        )
    if answers["python_version"] not in PYTHON_VERSIONS:
        found.append(
            f"python_version {answers['python_version']!r} must be one of "
            f"{', '.join(PYTHON_VERSIONS)}"
        )
    if answers["ci"] not in CI_CHOICES:
        found.append(f"ci {answers['ci']!r} must be one of {', '.join(CI_CHOICES)}")
    if not EMAIL.match(answers["author_email"]):
        found.append(
            f"author_email {answers['author_email']!r} must look like an email (name@example.com)"
        )
    for key in ("author_name", "description"):
        if any(char in answers[key] for char in TOML_UNSAFE):
            found.append(f"{key} must not contain double quotes or backslashes")
    return found


def main() -> int:
    found = problems(ANSWERS)
    if found:
        print("Cannot generate the project:", file=sys.stderr)
        for problem in found:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
