"""The shipped test signature is package data: in the wheel and the sdist, and found by
`dev_clamd` from a non-editable install (not only from the source tree)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from tests.processes import PROJECT_ROOT

SIGNATURE = "app/uploads/signatures/test-eicar.hdb"
# `build_wheel` or `build_sdist` of setuptools, the project's build backend, into argv[2].
BUILD = (
    "import sys; from setuptools import build_meta as backend; "
    "print(getattr(backend, sys.argv[1])(sys.argv[2]))"
)


def _build(kind: str, source: Path, out: Path) -> Path:
    """`build_wheel` or `build_sdist` by setuptools (the locked build backend), in a copy of the
    project, so nothing is written into the checkout."""
    result = subprocess.run(
        [sys.executable, "-c", BUILD, kind, str(out)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return out / result.stdout.strip().splitlines()[-1]


def test_the_test_signature_ships_in_the_wheel_and_the_sdist(tmp_path: Path) -> None:
    source = tmp_path / "project"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT_ROOT / name, source / name)
    shutil.copytree(PROJECT_ROOT / "src", source / "src", ignore=shutil.ignore_patterns("*.pyc"))
    wheel = _build("build_wheel", source, tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        assert SIGNATURE in archive.namelist()
        installed = tmp_path / "installed"
        archive.extractall(installed)  # noqa: S202 - the wheel this test just built
    sdist = _build("build_sdist", source, tmp_path)
    with tarfile.open(sdist) as archive:
        assert any(name.endswith(f"src/{SIGNATURE}") for name in archive.getnames())
    probe = "from app.uploads import dev_clamd as d; print(d.__file__); print(d.SIGNATURES)"
    found = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(installed), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert found[0].startswith(str(installed))
    assert (Path(found[1]) / "test-eicar.hdb").read_bytes() == (
        PROJECT_ROOT / "src" / SIGNATURE
    ).read_bytes()
