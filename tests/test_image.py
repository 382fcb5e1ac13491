"""BUILD-CONTAINER: the baked project's Dockerfile builds a real image, and that image is what
the Dockerfile promises (hadolint: tests/test_dockerfile_lint.py).

The image is built with podman on a local Debian base (tests/podman_images.py) and checked by
mounting it and running its commands under `chroot` as the image's user. podman and debootstrap
come from Debian (`.ci/run` installs them): without them these tests fail when CI is set and are
skipped, naming what is missing, elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.utils import canonicalize_name

from tests import podman_images
from tests.baking import bake

IMAGE = "localhost/image-test:latest"
PLANTED = "image-test-value-that-must-not-ship"
COMPILERS = ("gcc", "cc", "c++", "g++", "clang", "x86_64-linux-gnu-gcc-12")
# What the chroot needs besides the image's ENV: services for the passing check.
SERVICES = {
    "DATABASE_URL": os.environ.get(
        "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    ),
    "REDIS_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
}
# packaging.markers.default_environment(), computed by the image's own interpreter.
MARKER_ENVIRONMENT = """
import json, os, platform, sys
print(json.dumps({
    "implementation_name": sys.implementation.name,
    "implementation_version": platform.python_version(),
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}))
"""
INSTALLED = (
    "import importlib.metadata as m, json;"
    "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in {"", "0", "false"}


@pytest.fixture(scope="module")
def image_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default bake, with .env files and a .venv planted for .dockerignore to keep out."""
    missing = podman_images.missing_tools()
    if missing:
        message = f"cannot build images here, missing: {', '.join(missing)}"
        if _in_ci():
            pytest.fail(f"{message}; .ci/run installs podman and debootstrap", pytrace=False)
        pytest.skip(f"{message} (apt-get install podman debootstrap)")
    project = bake(tmp_path_factory.mktemp("image"))
    (project / ".env").write_text(f"SECRET_KEY={PLANTED}\n")
    (project / ".venv" / "bin").mkdir(parents=True)
    (project / "src" / "app" / ".env.local").write_text(f"SECRET_KEY={PLANTED}\n")
    assert (project / "uv.lock").is_file(), "the image installs from uv.lock; the bake has none"
    return project


@pytest.fixture(scope="module")
def image(image_project: Path) -> Iterator[podman_images.MountedImage]:
    """The project's image, built on the local Debian base and mounted."""
    with podman_images.one_builder_at_a_time():
        podman_images.build(image_project, podman_images.base_image(), IMAGE)
    with podman_images.mounted(IMAGE) as mounted:
        yield mounted


def test_final_image_has_no_compiler_and_no_installer(image: podman_images.MountedImage) -> None:
    """Only the builder stage had uv; neither stage's compilers or caches reach the final image."""
    search = [image.root / part.lstrip("/") for part in image.env()["PATH"].split(":")]
    found = [
        str(folder / name) for folder in search for name in COMPILERS if (folder / name).exists()
    ]
    assert found == []
    venv_bin = image.root / "app" / ".venv" / "bin"
    assert not (venv_bin / "uv").exists()
    assert not (venv_bin / "pip").exists()
    assert not (image.root / "opt" / "uv").exists()
    caches = [image.root / "root" / ".cache" / tool for tool in ("pip", "uv")]
    assert [str(cache) for cache in caches if cache.exists()] == []


def test_image_runs_as_a_numeric_non_root_user(image: podman_images.MountedImage) -> None:
    """USER is numeric (Kubernetes' runAsNonRoot can verify it) and not 0; the code is not
    writable by that user."""
    uid, _, gid = image.user.partition(":")
    assert uid.isdigit(), image.user
    assert gid.isdigit(), image.user
    assert int(uid) != 0
    assert int(gid) != 0
    probe = image.run(
        ["python3", "-c", "import os; print(os.getuid(), os.access('/app/src', os.W_OK))"],
        image.env(),
    )
    assert probe.stdout.split() == [uid, "False"], probe.stderr


def test_image_declares_entrypoint_healthcheck_and_stopsignal(
    image: podman_images.MountedImage,
) -> None:
    """`docker run IMAGE worker|beat|migrate` picks the command; `serve` is the default."""
    assert image.command() == ["acme-service"]
    # All interfaces inside the container: the runtime publishes the port it chooses.
    assert image.config.get("Cmd") == ["serve", "--host", "0.0.0.0", "--port", "8000"]  # noqa: S104
    assert image.config.get("StopSignal") == "SIGTERM"
    assert image.healthcheck is not None
    test = image.healthcheck.get("Test")
    assert isinstance(test, list)
    assert "/health/live" in " ".join(test)
    assert image.env()["ENVIRONMENT"] == "production"
    help_text = image.run(image.command("--help"), image.env())
    for command in ("serve", "worker", "beat", "migrate", "check-config"):
        assert command in help_text.stdout, help_text.stderr


def test_check_config_fails_fast_on_a_bad_database_url(image: podman_images.MountedImage) -> None:
    """Exit status 2 naming DATABASE_URL, before any connection is tried."""
    env = image.env(ENVIRONMENT="test", DATABASE_URL="mysql://app@db/app", **_only("REDIS_URL"))
    started = time.monotonic()
    result = image.run(image.command("check-config"), env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "DATABASE_URL" in result.stderr
    assert time.monotonic() - started < 30


def test_check_config_refuses_the_production_default_without_services(
    image: podman_images.MountedImage,
) -> None:
    """The image defaults to production, which refuses to start without its services."""
    result = image.run(image.command("check-config"), image.env())
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr
    assert "REDIS_URL" in result.stderr


def test_check_config_passes_with_good_values(image: podman_images.MountedImage) -> None:
    result = image.run(image.command("check-config"), image.env(ENVIRONMENT="test", **SERVICES))
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout


def test_installed_packages_are_exactly_the_lock_file(
    image: podman_images.MountedImage, image_project: Path
) -> None:
    """Every distribution in the image is in uv.lock at its locked version, and nothing locked
    for this platform is missing (the project itself aside)."""
    exported = subprocess.run(
        [
            _uv(),
            "export",
            "--frozen",
            "--no-dev",
            "--no-hashes",
            "--no-emit-project",
            "--no-header",
            "--no-annotate",
        ],
        cwd=image_project,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    markers = json.loads(image.run(["python3", "-c", MARKER_ENVIRONMENT], image.env()).stdout)
    expected = {}
    for line in filter(None, (line.strip() for line in exported.splitlines())):
        requirement, _, marker = line.partition(";")
        if marker and not Marker(marker.strip()).evaluate(markers):
            continue
        name, _, version = requirement.strip().partition("==")
        expected[canonicalize_name(name)] = version
    installed = image.run(["python3", "-c", INSTALLED], image.env())
    actual = {canonicalize_name(k): v for k, v in json.loads(installed.stdout).items()}
    actual.pop(canonicalize_name("acme-service"))
    assert actual == expected


def test_build_context_keeps_secrets_and_tests_out(image: podman_images.MountedImage) -> None:
    """.dockerignore: no .env (even inside src/), no tests, no local .venv leftovers."""
    app = image.root / "app"
    assert not (app / ".env").exists()
    assert not (app / "src" / "app" / ".env.local").exists()
    assert not (app / "tests").exists()
    assert (app / "migrations").is_dir()
    assert (app / "alembic.ini").is_file()


def test_bytecode_is_compiled_at_build_time(image: podman_images.MountedImage) -> None:
    """The read-only runtime never compiles: every module of the app has its .pyc already."""
    tag = "cpython-" + podman_images.SUITE_PYTHON.replace(".", "")
    sources = list((image.root / "app" / "src" / "app").rglob("*.py"))
    assert sources
    missing = [
        str(source)
        for source in sources
        if not (source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc").is_file()
    ]
    assert missing == []


def _only(*names: str) -> dict[str, str]:
    return {name: SERVICES[name] for name in names}


def _uv() -> str:
    beside = Path(sys.executable).parent / "uv"
    found = str(beside) if beside.is_file() else shutil.which("uv")
    assert found, "uv is missing: pip install -r requirements-test.txt"
    return found
