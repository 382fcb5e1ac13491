"""Every option set bakes into a complete project with every template tag rendered."""

from __future__ import annotations

import ast
import fnmatch
import json
import re
import tomllib
from importlib import metadata
from itertools import product
from pathlib import Path

import pytest

from tests.baking import CI_CHOICES, DEFAULT_SLUG, PYTHON_VERSIONS, TEMPLATE_ROOT, text_files
from tests.conftest import Baker

VARIANTS = [
    pytest.param(version, ci, id=f"py{version}-ci_{ci}")
    for version, ci in product(PYTHON_VERSIONS, CI_CHOICES)
]
# Files every bake must contain, whatever the options.
SKELETON = (
    "README.md",
    "Makefile",
    "pyproject.toml",
    "alembic.ini",
    "migrations/env.py",
    "src/app/__main__.py",
    "src/app/main.py",
    "src/app/cli.py",
    "src/app/settings.py",
    "src/app/dev/services.py",
    "tests/conftest.py",
)
GITHUB_WORKFLOW = ".github/workflows/ci.yml"
# A Jinja expression or statement that names the cookiecutter context, e.g. `{{ cookiecutter.x }}`.
COOKIECUTTER_TAG = re.compile(r"\{[{%]-?[^}\n]*\bcookiecutter\.")
# Any Jinja statement, e.g. `{% if ... %}` or `{% endif %}` (GitHub's `${{ }}` is not one).
JINJA_STATEMENT = re.compile(r"\{%-?\s*\w+[^\n]*?-?%\}")
# Runtime Jinja templates copied without rendering may hold `{% %}` statements of their own.
RUNTIME_TEMPLATE_SUFFIXES = (".html", ".jinja", ".j2")


def _copied_without_render(relative: str) -> bool:
    patterns: list[str] = json.loads((TEMPLATE_ROOT / "cookiecutter.json").read_text())[
        "_copy_without_render"
    ]
    return any(fnmatch.fnmatch(relative, pattern) for pattern in patterns)


def test_defaults_bake_acme_service(bake: Baker) -> None:
    """`cookiecutter --no-input` makes `acme-service/` whose console script is the slug."""
    project = bake()
    assert project.name == DEFAULT_SLUG
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == DEFAULT_SLUG
    assert pyproject["project"]["scripts"] == {DEFAULT_SLUG: "app.cli:main"}


def test_slug_derives_from_project_name(bake: Baker) -> None:
    """A project name with spaces and underscores yields a lowercase, hyphenated slug."""
    project = bake(project_name="Billing_Ledger API")
    assert project.name == "billing-ledger-api"
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"] == {"billing-ledger-api": "app.cli:main"}


def test_identity_answers_reach_pyproject(bake: Baker) -> None:
    """Author, email and description answers are written into the project's metadata."""
    project = bake(
        author_name="Ada Lovelace",
        author_email="ada@example.org",
        description="Ledger of engines.",
    )
    metadata = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    assert metadata["authors"] == [{"name": "Ada Lovelace", "email": "ada@example.org"}]
    assert metadata["description"] == "Ledger of engines."


@pytest.mark.parametrize(("python_version", "ci"), VARIANTS)
def test_variant_keeps_the_skeleton(bake: Baker, python_version: str, ci: str) -> None:
    """Each option set bakes every file of the service's skeleton."""
    project = bake(python_version=python_version, ci=ci)
    missing = [name for name in SKELETON if not (project / name).is_file()]
    assert missing == []


@pytest.mark.parametrize(("python_version", "ci"), VARIANTS)
def test_github_workflow_only_with_ci_github(bake: Baker, python_version: str, ci: str) -> None:
    """`.github/workflows/ci.yml` is baked with ci=github; with ci=none `.github/` is gone."""
    project = bake(python_version=python_version, ci=ci)
    assert (project / GITHUB_WORKFLOW).is_file() == (ci == "github")
    assert (project / ".github").exists() == (ci == "github")


@pytest.mark.parametrize("python_version", PYTHON_VERSIONS)
def test_python_version_reaches_every_tool(bake: Baker, python_version: str) -> None:
    """The chosen Python is the floor for pip, ruff's target and mypy's target."""
    project = bake(python_version=python_version)
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["requires-python"] == f">={python_version}"
    assert pyproject["tool"]["ruff"]["target-version"] == f"py{python_version.replace('.', '')}"
    assert pyproject["tool"]["mypy"]["python_version"] == python_version


@pytest.mark.parametrize(("python_version", "ci"), VARIANTS)
def test_no_unrendered_template_tags(bake: Baker, python_version: str, ci: str) -> None:
    """No baked file still holds a `{{ cookiecutter.… }}` tag or a Jinja `{% … %}` statement."""
    project = bake(python_version=python_version, ci=ci)
    leftovers: list[str] = []
    for path, text in text_files(project):
        relative = path.relative_to(project).as_posix()
        runtime_template = path.suffix in RUNTIME_TEMPLATE_SUFFIXES and _copied_without_render(
            relative
        )
        for number, line in enumerate(text.splitlines(), start=1):
            if COOKIECUTTER_TAG.search(line) or (
                JINJA_STATEMENT.search(line) and not runtime_template
            ):
                leftovers.append(f"{relative}:{number}: {line.strip()}")
    assert leftovers == []


def _imported_top_level_modules(project_dir: Path) -> set[str]:
    modules: set[str] = set()
    for path in [*project_dir.glob("src/**/*.py"), *project_dir.glob("tests/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules.update(alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.add(node.module.partition(".")[0])
    return modules


def _requirement_names(requirements: list[str]) -> set[str]:
    return {
        re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower() for requirement in requirements
    }


def test_the_dev_extra_brings_the_stubs_of_every_untyped_package_the_project_imports(
    bake: Baker,
) -> None:
    """`make lint` runs mypy --strict in the project's own .venv. This environment also holds the
    template's tools and their stubs (types-psutil), which once hid a project importing psutil
    without declaring its stubs: every stub package installed here whose module the project
    imports must come with the project's own dependencies."""
    project_dir = bake()
    project = tomllib.loads((project_dir / "pyproject.toml").read_text())["project"]
    declared = _requirement_names(
        [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    )
    imported = _imported_top_level_modules(project_dir)
    stubs = {
        dist.metadata["Name"].lower()
        for dist in metadata.distributions()
        if dist.metadata["Name"] and dist.metadata["Name"].lower().startswith("types-")
    }
    needed = {stub for stub in stubs if stub.removeprefix("types-") in imported}
    assert "types-psutil" in needed  # the case this test was written for
    assert needed - declared == set()
