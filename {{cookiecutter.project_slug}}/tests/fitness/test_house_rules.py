"""Architecture rules that keep holding after you add code: the suite fails when one is broken."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from fastapi.dependencies.models import Dependant

from app.idempotency.keys import require_idempotency_key
from app.main import create_app
from app.routes import api_routes
from app.settings import Settings

APP = Path(__file__).resolve().parents[2] / "src" / "app"
BANNED_MODULE_NAMES = {"utils", "helpers", "common", "core", "misc"}
MAX_FILE_LINES = 300


def _modules() -> list[Path]:
    return sorted(APP.rglob("*.py"))


def test_middleware_is_pure_asgi() -> None:
    """No BaseHTTPMiddleware and no @app.middleware("http"): they cost every request a task."""
    offenders = []
    for path in _modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            is_base = (isinstance(node, ast.Attribute) and node.attr == "BaseHTTPMiddleware") or (
                isinstance(node, ast.Name) and node.id == "BaseHTTPMiddleware"
            )
            is_decorator = (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "middleware"
            )
            if is_base or is_decorator:
                offenders.append(f"{path.name}: {ast.unparse(node)[:60]}")
    assert offenders == []


def test_modules_are_named_for_what_they_do() -> None:
    """No `utils`, `helpers`, `common` or `core` modules or packages."""
    names = {part for path in _modules() for part in path.relative_to(APP).with_suffix("").parts}
    assert names & BANNED_MODULE_NAMES == set()


def test_files_stay_small() -> None:
    """Every module stays under ~300 lines, so each one can be read in one sitting."""
    too_long = {
        str(path.relative_to(APP)): lines
        for path in _modules()
        if (lines := len(path.read_text().splitlines())) > MAX_FILE_LINES
    }
    assert too_long == {}


def test_middleware_order_is_declared_in_one_place() -> None:
    """Only middleware/stack.py calls add_middleware, so the order is read in one file."""
    callers = [
        str(path.relative_to(APP)) for path in _modules() if "add_middleware(" in path.read_text()
    ]
    assert callers == ["middleware/stack.py"]


def _dependency_calls(dependant: Dependant) -> set[object]:
    calls: set[object] = set()
    for sub in dependant.dependencies:
        calls.add(sub.call)
        calls |= _dependency_calls(sub)
    return calls


def test_every_unsafe_post_declares_idempotency() -> None:
    """Each POST route requires an Idempotency-Key, or carries an exemption with its reason."""
    app = create_app(Settings(environment="test"))
    posts = [route for route in api_routes(app) if "POST" in (route.methods or ())]
    undeclared = [
        route.path
        for route in posts
        if require_idempotency_key not in _dependency_calls(route.dependant)
        and not (route.openapi_extra or {}).get("x-idempotency-exempt")
    ]
    assert posts
    assert undeclared == []


def test_only_the_session_module_commits_or_rolls_back() -> None:
    """Transactions begin, commit and roll back in db/session.py only; services just flush."""
    pattern = re.compile(r"\.(begin|commit|rollback)\(\)")
    offenders = [
        str(path.relative_to(APP))
        for path in _modules()
        if path.relative_to(APP).as_posix() != "db/session.py" and pattern.search(path.read_text())
    ]
    assert offenders == []
