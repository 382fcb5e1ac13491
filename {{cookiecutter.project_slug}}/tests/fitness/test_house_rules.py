"""Architecture rules that keep holding after you add code: the suite fails when one is broken."""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from collections.abc import Callable
from pathlib import Path

from fastapi.dependencies.models import Dependant
from fastapi.routing import RouteContext

from app.http.routes import api_routes
from app.idempotency.keys import require_idempotency_key
from app.idempotency.store import get_idempotency
from app.main import create_app
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


def _parameter_for(route: RouteContext, dependency: Callable[..., object]) -> str | None:
    """The name of the handler's own parameter that `dependency` provides, if any."""
    return next((sub.name for sub in route.dependant.dependencies if sub.call is dependency), None)


def _passes_its_key_to_the_store(route: RouteContext) -> bool:
    """The handler calls `<its IdempotencyDep>.run(..., <its IdempotencyKeyDep>, ...)`."""
    key = _parameter_for(route, require_idempotency_key)
    store = _parameter_for(route, get_idempotency)
    if key is None or store is None or route.endpoint is None:
        return False
    source = textwrap.dedent(inspect.getsource(inspect.unwrap(route.endpoint)))
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "run"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == store
        ):
            arguments = [*node.args, *(keyword.value for keyword in node.keywords)]
            if any(isinstance(arg, ast.Name) and arg.id == key for arg in arguments):
                return True
    return False


def test_every_idempotency_key_goes_through_the_store() -> None:
    """A POST that takes an Idempotency-Key hands it to `Idempotency.run`, which does the work.

    Declaring the key only validates the header: without the store, a retry runs the handler
    again. So the handler must declare `IdempotencyKeyDep` and `IdempotencyDep` itself and call
    `idempotency.run(principal, idempotent_request, work)`, where `work` does the writes.
    """
    app = create_app(Settings(environment="test"))
    keyed = [
        route
        for route in api_routes(app)
        if require_idempotency_key in _dependency_calls(route.dependant)
    ]
    bypassing = [
        f"{sorted(route.methods or ())} {route.path}"
        for route in keyed
        if not _passes_its_key_to_the_store(route)
    ]
    assert keyed
    assert bypassing == []


def test_only_the_session_module_commits_or_rolls_back() -> None:
    """Transactions begin, commit and roll back in db/session.py only; services just flush."""
    pattern = re.compile(r"\.(begin|commit|rollback)\(\)")
    offenders = [
        str(path.relative_to(APP))
        for path in _modules()
        if path.relative_to(APP).as_posix() != "db/session.py" and pattern.search(path.read_text())
    ]
    assert offenders == []
