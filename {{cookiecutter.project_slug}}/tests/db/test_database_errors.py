"""Database errors reach clients as problem responses: a conflict is 409, a bug a bare 500."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.errors import domain_error_for
from app.db.session import Database
from app.errors import ConflictError, ServiceUnavailableError, UnprocessableError
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

    @app.get("/bug")
    async def bug(request: Request) -> None:
        await run(request, "SELECT * FROM no_such_table_xyz")

    return TestClient(app, raise_server_exceptions=False)


def test_unique_violation_is_a_409_problem(api: TestClient) -> None:
    """SQLSTATE 23505 becomes 409 Conflict with no SQL in the body."""
    with api:
        response = api.get("/unique-violation")
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert "dup key" not in response.text


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
