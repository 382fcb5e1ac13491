"""Bake the template into a folder, and look at or run what came out."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

from cookiecutter.main import cookiecutter

TEMPLATE_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SLUG = "acme-service"
PYTHON_VERSIONS = ("3.11", "3.12", "3.13")
CI_CHOICES = ("github", "none")
# Variables that point a baked project at real services; removed to force the embedded ones.
SERVICE_VARIABLES = (
    "TEST_DATABASE_URL",
    "TEST_REDIS_URL",
    "DATABASE_URL",
    "DATABASE_OWNER_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "ENVIRONMENT",
)


def bake(workdir: Path, **answers: str) -> Path:
    """Generate a project under `workdir/out` with `answers` over the defaults; return its folder.

    Cookiecutter's user config and replay files are kept under `workdir` too, so a bake never
    reads or writes the home directory.
    """
    config_dir = workdir / "cookiecutter"
    config_dir.mkdir(parents=True, exist_ok=True)
    config_file = config_dir / "config.yaml"
    config_file.write_text(
        f'cookiecutters_dir: "{config_dir / "templates"}"\nreplay_dir: "{config_dir / "replay"}"\n'
    )
    project = cookiecutter(
        str(TEMPLATE_ROOT),
        no_input=True,
        extra_context=answers,
        output_dir=str(workdir / "out"),
        config_file=str(config_file),
    )
    return Path(project)


def text_files(root: Path) -> Iterator[tuple[Path, str]]:
    """Every file under `root` that decodes as UTF-8, with its text."""
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        try:
            yield path, path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue


def clean_env(drop: Iterable[str] = ()) -> dict[str, str]:
    """This process's environment without the outer pytest's own variables and without `drop`."""
    dropped = set(drop)
    return {
        name: value
        for name, value in os.environ.items()
        if name not in dropped and not name.startswith("PYTEST_")
    }


def project_env(project: Path, drop: Iterable[str] = ()) -> dict[str, str]:
    """`clean_env(drop)` for a tool run in a baked `project`: its `src/` alone on PYTHONPATH."""
    return {**clean_env(drop), "PYTHONPATH": str(project / "src")}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def find_python(version: str) -> Path | None:
    """An interpreter of Python `version` (`3.13`) here: `pythonX.Y` on PATH if it runs (a pyenv
    shim for a version that is not selected does not), else pyenv's build of it; None if neither."""
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    on_path = shutil.which(f"python{version}")
    candidates = [on_path] if on_path else []
    candidates += sorted(
        str(p) for p in pyenv_root.glob(f"versions/{version}.*/bin/python{version}")
    )
    for candidate in candidates:
        probe = subprocess.run([candidate, "-c", ""], capture_output=True, check=False)
        if probe.returncode == 0:
            return Path(candidate)
    return None


def assert_suite_passes(python: Path | str, project: Path, env: dict[str, str]) -> None:
    """`pytest -n 2` of a baked `project` with `python` exits 0, with tests passed and none failed;
    on failure the assertion shows the last 60 lines of its output."""
    result = subprocess.run(
        [str(python), "-m", "pytest", "-n", "2", "-p", "no:cacheprovider", "--durations=15"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=2400,
        check=False,
    )
    output = result.stdout + result.stderr
    tail = "\n".join(output.splitlines()[-60:])
    assert result.returncode == 0, tail
    assert re.search(r"\b[1-9]\d* passed\b", output), tail
    assert not re.search(r"\b\d+ (failed|errors?)\b", output), tail
