"""tus-js-client (npm) for the tests: installed once into the project's ignored `.cache/` with
npm from the registry, run under Node. Without node or npm the test is skipped on a laptop and
fails when CI is set."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.processes import PROJECT_ROOT
from tests.uploads.clamd import ci_is_set

TUS_JS_CLIENT = "tus-js-client@4.3.1"
CACHE = PROJECT_ROOT / ".cache" / "npm" / TUS_JS_CLIENT.replace("@", "-")
SCRIPT = Path(__file__).with_name("tus_js_upload.cjs")
NODE_HINT = "install Node.js 18+ with npm (`sudo apt-get install nodejs npm`)"


def node_and_npm() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        if ci_is_set():
            pytest.fail(f"node and npm are required when CI is set; {NODE_HINT}", pytrace=False)
        pytest.skip(f"tus-js-client test not run: node or npm is missing; {NODE_HINT}")
    return node, npm


def tus_js_client_modules(npm: str) -> Path:
    """`node_modules` holding tus-js-client, installed on first use (a marker file, written
    last, tells a finished install from an interrupted one)."""
    installed = CACHE / ".installed"
    if not installed.exists():
        shutil.rmtree(CACHE, ignore_errors=True)
        CACHE.mkdir(parents=True)
        command = [npm, "install", "--prefix", str(CACHE), "--no-save", "--no-package-lock"]
        command += ["--no-audit", "--no-fund", "--ignore-scripts", TUS_JS_CLIENT]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        assert result.returncode == 0, (
            f"npm install {TUS_JS_CLIENT} failed: {result.stderr[-2000:]}"
        )
        installed.touch()
    return CACHE / "node_modules"


def upload_with_tus_js(endpoint: str, source: Path, api_key: str, chunk_size: int) -> Any:
    """Upload `source`, stopped half way and resumed; what the script reported (JSON)."""
    node, npm = node_and_npm()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "NODE_PATH": str(tus_js_client_modules(npm)),
        "TUS_ENDPOINT": endpoint,
        "TUS_FILE": str(source),
        "TUS_API_KEY": api_key,
        "TUS_CHUNK_SIZE": str(chunk_size),
    }
    result = subprocess.run(
        [node, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)
