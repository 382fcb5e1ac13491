"""Database errors reach clients as problem responses: a conflict is 409, a bug a bare 500."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest
from asyncpg.exceptions import CannotConnectNowError  # type: ignore[import-untyped]  # asyncpg ships no type information
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.errors import connection_problem, domain_error_for
from app.db.session import Database
from app.http.errors import ConflictError, ServiceUnavailableError, UnprocessableError
from app.main import create_app
from app.settings import Settings
from app.tenants.service import NewTenant
from tests.processes import free_port


@pytest.fixture
def api(app: FastAPI) -> TestClient:
    async def run(request: Request, sql: str) -> None:
        database: Database = request.app.state.database

        async def work(session: AsyncSession) -> None:
            await session.execute(text(sql))

        await database.run(work, tenant_id=None)

    @app.get("/unique-violation")
    async def unique_violation(request: Request) -> None:
        await run(request, "DO $$ BEGIN RAISE unique_violation USING MESSAGE = 'dup key'; END $$")

    @app.get("/starting-up")
    async def starting_up() -> None:
        # What asyncpg raises, unwrapped, when a connect reaches a server still starting up.
        raise CannotConnectNowError("the database system is starting up")

    @app.get("/bug")
    async def bug(request: Request) -> None:
        await run(request, "SELECT * FROM no_such_table_xyz")

    @app.get("/bug-with-parameters")
    async def bug_with_parameters(request: Request) -> None:
        database: Database = request.app.state.database

        async def work(session: AsyncSession) -> None:
            await session.execute(
                text("INSERT INTO no_such_table_xyz (title, body) VALUES (:title, :body)"),
                {"title": "SENSITIVE-TITLE-123", "body": "SENSITIVE-BODY-456"},
            )

        await database.run(work, tenant_id=None)

    return TestClient(app, raise_server_exceptions=False)


def test_unique_violation_is_a_409_problem(api: TestClient) -> None:
    """SQLSTATE 23505 becomes 409 Conflict with no SQL in the body."""
    with api:
        response = api.get("/unique-violation")
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert "dup key" not in response.text


def test_a_failing_statement_logs_no_parameter(
    api: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """The 500's logged traceback names the statement but none of its values (user content)."""
    with api:
        response = api.get("/bug-with-parameters")
    assert response.status_code == 500
    logged = capsys.readouterr()
    assert "no_such_table_xyz" in logged.out  # the error itself is logged
    assert "SENSITIVE" not in logged.out + logged.err


def test_a_broken_query_is_a_500_without_sql(api: TestClient) -> None:
    """An undefined table is a bug: 500, and neither the SQL nor the table name leaks."""
    with api:
        response = api.get("/bug")
    assert response.status_code == 500
    assert "no_such_table_xyz" not in response.text
    assert "SELECT" not in response.text


@pytest.mark.parametrize(
    ("sqlstate", "expected"),
    [
        ("40001", ServiceUnavailableError),
        ("40P01", ServiceUnavailableError),
        ("57014", ServiceUnavailableError),
        ("55P03", ServiceUnavailableError),
        ("08006", ServiceUnavailableError),
        ("08001", ServiceUnavailableError),
        ("57P01", ServiceUnavailableError),
        ("57P02", ServiceUnavailableError),
        ("57P03", ServiceUnavailableError),
        ("53300", ServiceUnavailableError),
        ("23505", ConflictError),
        ("23503", ConflictError),
        ("23514", UnprocessableError),
        ("22P02", UnprocessableError),
    ],
)
def test_sqlstates_map_to_problem_types(sqlstate: str, expected: type) -> None:
    """Timeouts and connection loss are 503; integrity problems 409/422."""
    assert isinstance(domain_error_for(sqlstate), expected)


def test_unknown_sqlstates_stay_500() -> None:
    """Syntax errors and undefined objects are bugs, not client errors."""
    assert domain_error_for("42601") is None
    assert domain_error_for("42P01") is None
    assert domain_error_for(None) is None


def test_an_unreachable_database_is_a_503_with_retry_after(
    make_settings: Callable[..., Settings], new_tenant: Callable[[], NewTenant]
) -> None:
    """With PostgreSQL down an authenticated request gets 503 + Retry-After, never a 500."""
    tenant = new_tenant()
    dead = f"postgresql://app_runtime@127.0.0.1:{free_port()}/none"
    with TestClient(create_app(make_settings(database_url=dead))) as client:
        response = client.get(
            "/api/v1/notes", headers={"Authorization": f"Bearer {tenant.api_key}"}
        )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("error", "label"),
    [
        (ConnectionRefusedError(111, "refused"), "unreachable"),
        (OSError(113, "no route to host"), "unreachable"),
        (TimeoutError(), "timeout"),
        (PoolTimeoutError("no connection within 5 s"), "pool_timeout"),
        (CannotConnectNowError("the database system is starting up"), "sqlstate_57P03"),
    ],
)
def test_connection_class_errors_are_recognised(error: Exception, label: str) -> None:
    """OS errors, client timeouts, pool timeouts and asyncpg's own errors are connection-class."""
    assert connection_problem(error) == label


def test_a_bug_is_not_a_connection_problem() -> None:
    """A plain exception is not mistaken for an outage (it stays a 500)."""
    assert connection_problem(ValueError("bug")) is None


def test_a_database_starting_up_is_a_503_not_a_500(api: TestClient) -> None:
    """SQLSTATE 57P03 (PostgreSQL starting up / shutting down) is 503 with Retry-After."""
    with api:
        response = api.get("/starting-up")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"] == "application/problem+json"


PROJECT_ROOT = Path(__file__).resolve().parents[2]
ENGINE_FACTORIES = ("create_async_engine", "create_engine")


def _hides_parameters(call: ast.Call) -> bool:
    return any(
        keyword.arg == "hide_parameters"
        and isinstance(keyword.value, ast.Constant)
        and keyword.value.value is True
        for keyword in call.keywords
    )


def _engine_calls(tree: ast.Module) -> list[ast.Call]:
    # app.db.engine.create_engine sets hide_parameters itself (pinned by the test above).
    ours = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "app.db.engine"
        for alias in node.names
    }
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (getattr(node.func, "attr", None) or getattr(node.func, "id", None)) in ENGINE_FACTORIES
        and not (isinstance(node.func, ast.Name) and node.func.id in ours)
    ]


def _engines_without_hidden_parameters() -> list[str]:
    found = []
    for folder in ("src", "migrations"):
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py")):
            for call in _engine_calls(ast.parse(path.read_text())):
                if not _hides_parameters(call):
                    found.append(f"{path.relative_to(PROJECT_ROOT)}:{call.lineno}")
    return found


def test_every_engine_hides_statement_parameters() -> None:
    """Every engine in src/ and migrations/ passes hide_parameters=True (no user data in logs)."""
    assert _engines_without_hidden_parameters() == []
