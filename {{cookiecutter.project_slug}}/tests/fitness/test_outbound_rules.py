"""REL-RESILIENCE, kept after you add code: every outbound HTTP call goes through app.outbound."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "src" / "app"
OUTBOUND = APP / "outbound"
# Clients that would bypass the timeouts, retry rules and breaker of app.outbound.client.
HTTP_CLIENT_MODULES = {
    "httpx",
    "httpx2",
    "httpcore",
    "httpcore2",
    "requests",
    "aiohttp",
    "urllib3",
    "urllib.request",
}


def _imported_modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def http_client_imports(root: Path) -> list[str]:
    """Each module under `root`, outside app/outbound/, that imports an HTTP client library."""
    offenders = []
    for path in sorted(root.rglob("*.py")):
        if OUTBOUND in path.parents:
            continue
        for module in sorted(_imported_modules(ast.parse(path.read_text()))):
            top = module.split(".")[0]
            if module in HTTP_CLIENT_MODULES or top in HTTP_CLIENT_MODULES - {"urllib"}:
                offenders.append(f"{path.relative_to(root)} imports {module}")
    return offenders


def test_only_the_outbound_package_makes_http_clients() -> None:
    """Build an OutboundClient(OutboundDependency(...)) instead: it has timeouts and a breaker."""
    assert http_client_imports(APP) == []


def test_the_rule_catches_a_stray_client(tmp_path: Path) -> None:
    (tmp_path / "partner.py").write_text("import requests\nfrom httpx2 import AsyncClient\n")
    (tmp_path / "fine.py").write_text("import urllib.parse\n")
    assert http_client_imports(tmp_path) == [
        "partner.py imports httpx2",
        "partner.py imports requests",
    ]
