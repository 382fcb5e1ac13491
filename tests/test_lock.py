"""The baked project's uv.lock matches its pyproject.toml for every answer, and a stale one fails.

`uv lock --check --offline` compares the lock with pyproject.toml without resolving anything when
they agree, so these tests need no network.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.baking import DEFAULT_SLUG, PYTHON_VERSIONS, TEMPLATE_ROOT, clean_env, find_python
from tests.conftest import Baker
from tests.locking import STALE_HINT, UV, run_uv

# A second project name: the lock's own package must follow the slug.
PROJECT_NAMES = {"Acme Service": DEFAULT_SLUG, "Ledger Sync": "ledger-sync"}


def lock_is_current(project: Path, offline: bool = True) -> subprocess.CompletedProcess[str]:
    return run_uv(project, "lock", "--check", *(["--offline"] if offline else []))


def add_dependency(project: Path, requirement: str) -> None:
    """Put `requirement` first in pyproject.toml's `dependencies`, as a developer would."""
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    assert "\ndependencies = [\n" in text
    pyproject.write_text(
        text.replace("\ndependencies = [\n", f'\ndependencies = [\n    "{requirement}",\n')
    )


@pytest.mark.parametrize("python_version", PYTHON_VERSIONS)
@pytest.mark.parametrize("project_name", PROJECT_NAMES)
def test_lock_matches_pyproject(bake: Baker, python_version: str, project_name: str) -> None:
    """Each bake's uv.lock is current for its pyproject.toml: its requires-python and its name."""
    project = bake(python_version=python_version, project_name=project_name)
    result = lock_is_current(project)
    assert result.returncode == 0, f"{STALE_HINT}\n{result.stderr}"
    lock = tomllib.loads((project / "uv.lock").read_text())
    assert lock["requires-python"] == f">={python_version}"
    assert lock["package"][0]["name"] == PROJECT_NAMES[project_name]
    assert not (project / ".uv-locks").exists(), "the other answers' locks stay in the template"


def test_stale_lock_fails_the_check_and_make_install(bake: Baker) -> None:
    """A dependency added to pyproject.toml without `make lock`: the check and `make install` fail,
    and `make install` says to run `make lock` before it creates the environment."""
    project = bake()
    add_dependency(project, "six>=1.16")
    # Online: offline, uv can only say so when `six` happens to be in its cache already.
    result = lock_is_current(project, offline=False)
    assert result.returncode != 0
    assert "needs to be updated" in result.stderr
    # uv on PATH: `make install` uses it instead of bootstrapping one into .venv.
    env = {**clean_env(), "PATH": f"{UV.parent}{os.pathsep}{os.environ['PATH']}"}
    install = subprocess.run(
        ["make", "install"], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )
    assert install.returncode != 0
    assert "run 'make lock'" in install.stderr, install.stderr
    assert not (project / ".venv" / ".installed").exists()


def test_bootstrapped_uv_is_the_locked_one(default_project: Path) -> None:
    """The uv `make install` bootstraps (UV_VERSION), the uv the lock keeps in .venv and the uv the
    template's tests use are one version."""
    makefile = (default_project / "Makefile").read_text()
    bootstrap = re.search(r"^UV_VERSION := (\S+)$", makefile, re.MULTILINE)
    assert bootstrap is not None
    lock = tomllib.loads((default_project / "uv.lock").read_text())
    locked = {package["name"]: package["version"] for package in lock["package"]}
    assert locked["uv"] == bootstrap.group(1)
    requirements = (TEMPLATE_ROOT / "requirements-test.txt").read_text()
    assert f"uv=={bootstrap.group(1)}" in requirements.splitlines()
    pyproject = tomllib.loads((default_project / "pyproject.toml").read_text())
    assert pyproject["tool"]["uv"]["required-version"] == f">={bootstrap.group(1)}"


# Run by the clone's own Python: what `uv export` says the lock installs there, and what is.
_COMPARE_TO_LOCK = """
import json, sys
from importlib.metadata import distributions
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
locked = {}
for line in sys.stdin.read().splitlines():
    requirement = Requirement(line)
    if requirement.marker is None or requirement.marker.evaluate():
        locked[canonicalize_name(requirement.name)] = str(requirement.specifier).removeprefix("==")
installed = {canonicalize_name(d.metadata["Name"]): d.version for d in distributions()}
print(json.dumps({"locked": locked, "installed": installed}))
"""
# `python -m venv` seeds these; uv sync leaves them when the lock does not list them.
VENV_SEEDS = {"pip", "setuptools"}


def git(*args: str, cwd: Path) -> None:
    identity = ("-c", "user.name=Template Test", "-c", "user.email=test@example.com")
    subprocess.run(["git", *identity, *args], cwd=cwd, check=True, capture_output=True)


def test_fresh_clone_installs_exactly_the_lock(short_tmp: Path, bake: Baker) -> None:
    """Bake, commit, clone, `make install` with nothing but Python (uv is bootstrapped): every
    package in the clone's .venv is at its locked version, and every locked one is there."""
    project = bake()
    git("init", "-q", "-b", "main", cwd=project)
    git("add", "-A", cwd=project)
    git("commit", "-q", "-m", "baked", cwd=project)
    clone = short_tmp / "clone"
    git("clone", "-q", str(project), str(clone), cwd=short_tmp)
    python = find_python(PYTHON_VERSIONS[0])
    assert python is not None, f"Python {PYTHON_VERSIONS[0]} is needed for this test"
    without_uv = os.pathsep.join(
        folder
        for folder in os.environ["PATH"].split(os.pathsep)
        if not (Path(folder) / "uv").exists()
    )
    install = subprocess.run(
        ["make", "install", f"PYTHON={python}"],
        cwd=clone,
        env={**clean_env(), "PATH": without_uv},
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    assert "pip install --quiet 'uv==" in install.stdout, "uv was not bootstrapped into .venv"
    exported = run_uv(
        clone,
        "export",
        "--frozen",
        "--extra",
        "dev",
        "--no-emit-project",
        "--no-hashes",
        "--no-header",
        "--no-annotate",
    )
    assert exported.returncode == 0, exported.stderr
    compared = subprocess.run(
        [clone / ".venv" / "bin" / "python", "-c", _COMPARE_TO_LOCK],
        input=exported.stdout,
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads(compared.stdout)
    locked = found["locked"]
    installed = {
        name: version
        for name, version in found["installed"].items()
        if name != DEFAULT_SLUG and (name in locked or name not in VENV_SEEDS)
    }
    assert installed == locked
    assert DEFAULT_SLUG in found["installed"]
