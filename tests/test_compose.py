"""compose.yaml of every baked variant is a valid Compose file (check-jsonschema's vendored
compose-spec schema) and runs the whole service the way docs/deployment.md says: migrate once
before the API and the worker, one beat, every image pinned by digest, health checks.
"""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML (via uvicorn[standard]) ships no stubs

from tests.baking import CI_CHOICES, PYTHON_VERSIONS
from tests.conftest import Baker

PINNED = re.compile(r"^[\w.\-/:]+@sha256:[0-9a-f]{64}$")
APP_SERVICES = ("migrate", "api", "worker", "beat")


def _check_jsonschema(compose_file: Path) -> subprocess.CompletedProcess[str]:
    beside = Path(sys.executable).parent / "check-jsonschema"
    tool = str(beside) if beside.is_file() else shutil.which("check-jsonschema")
    assert tool, "check-jsonschema is missing: pip install -r requirements-test.txt"
    return subprocess.run(
        [tool, "--builtin-schema", "vendor.compose-spec", str(compose_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _services(project: Path) -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load((project / "compose.yaml").read_text())["services"]
    return services


@pytest.mark.parametrize(
    ("python_version", "ci"), list(itertools.product(PYTHON_VERSIONS, CI_CHOICES))
)
def test_compose_file_matches_the_compose_spec(bake: Baker, python_version: str, ci: str) -> None:
    project = bake(python_version=python_version, ci=ci)
    result = _check_jsonschema(project / "compose.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


BREAKAGES: dict[str, Callable[[str], str]] = {
    "unknown-condition": lambda text: text.replace(
        "condition: service_completed_successfully", "condition: service_finished", 1
    ),
    "misspelled-key": lambda text: text.replace("    depends_on:\n", "    depend_on:\n", 1),
    "healthcheck-as-string": lambda text: text.replace(
        "    healthcheck:\n      disable: true\n", "    healthcheck: off\n", 1
    ),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_schema_rejects_a_broken_compose_file(
    default_project: Path, tmp_path: Path, breakage: str
) -> None:
    """The validation is not vacuous: each deliberate mistake fails it."""
    text = (default_project / "compose.yaml").read_text()
    broken = BREAKAGES[breakage](text)
    assert broken != text, "the replacement no longer matches compose.yaml"
    compose_file = tmp_path / "compose.yaml"
    compose_file.write_text(broken)
    result = _check_jsonschema(compose_file)
    assert result.returncode != 0, result.stdout


def test_api_and_worker_wait_for_a_successful_migration(default_project: Path) -> None:
    services = _services(default_project)
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    for name in ("api", "worker", "beat"):
        condition = services[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", name


def test_app_services_are_built_from_the_dockerfile(default_project: Path) -> None:
    """One image for all four; `serve` (the image's CMD) for the API, a command for the rest."""
    services = _services(default_project)
    assert (default_project / "Dockerfile").is_file()
    images = {services[name]["image"] for name in APP_SERVICES}
    assert len(images) == 1
    for name in APP_SERVICES:
        assert services[name]["build"]["context"] == ".", name
    assert "command" not in services["api"]
    assert services["worker"]["command"][0] == "worker"
    assert services["beat"]["command"][0] == "beat"


def test_beat_runs_once(default_project: Path) -> None:
    beat = _services(default_project)["beat"]
    assert beat["deploy"]["replicas"] == 1


def test_dependency_images_are_pinned_by_digest(default_project: Path) -> None:
    services = _services(default_project)
    unpinned = {
        name: service["image"]
        for name, service in services.items()
        if "build" not in service and not PINNED.match(service["image"])
    }
    assert unpinned == {}


def test_long_running_services_have_health_checks(default_project: Path) -> None:
    services = _services(default_project)
    for name in ("postgres", "redis", "api", "worker"):
        test = services[name]["healthcheck"]["test"]
        assert test[0] == "CMD", name
        assert len(test) > 1, name
    assert "/health/ready" in " ".join(services["api"]["healthcheck"]["test"])


def test_redis_keeps_its_append_only_file(default_project: Path) -> None:
    """Queued tasks survive a Redis restart (docs/worker.md), with the service in compose too."""
    command = _services(default_project)["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "everysec"


def test_published_ports_are_loopback_only(default_project: Path) -> None:
    for name, service in _services(default_project).items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
