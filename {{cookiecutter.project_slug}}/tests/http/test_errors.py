"""OBS-ERRORS and API-CONTRACTS: every error is an RFC 9457 problem with a correlation id."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, SecretStr

from app.http.errors import ConflictError
from tests.conftest import SUPPORT_URL

PROBLEM_MEMBERS = {"type", "title", "status", "detail", "instance", "correlation_id", "support"}
LEAKY_SECRET = "pa55w0rd-do-not-echo"


class Login(BaseModel):
    username: str
    password: SecretStr
    age: int


@pytest.fixture
def app_with_routes(app: FastAPI) -> FastAPI:
    @app.post("/login")
    async def login(body: Login) -> dict[str, str]:
        return {"user": body.username}

    @app.get("/conflict")
    async def conflict() -> None:
        raise ConflictError("the note changed meanwhile", current_version=3)

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError(f"SELECT * FROM users WHERE password = '{LEAKY_SECRET}'")  # noqa: S608 - a message, not a query

    return app


@pytest.fixture
def api(app_with_routes: FastAPI) -> Any:
    with TestClient(app_with_routes, raise_server_exceptions=False) as client:
        yield client


def _assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert set(body) >= PROBLEM_MEMBERS
    assert body["status"] == status
    assert body["correlation_id"] == response.headers["x-request-id"]
    assert body["support"] == SUPPORT_URL
    return body


def test_unknown_route_is_a_404_problem(api: TestClient) -> None:
    """404 uses about:blank with the status phrase as title."""
    body = _assert_problem(api.get("/nowhere"), 404)
    assert (body["type"], body["title"]) == ("about:blank", "Not Found")


def test_wrong_method_is_a_405_problem(api: TestClient) -> None:
    """405 keeps the Allow header."""
    response = api.delete("/health/live")
    _assert_problem(response, 405)
    assert response.headers["allow"] == "GET"


def test_a_405_allows_every_method_of_the_path(api: TestClient) -> None:
    """FastAPI makes one route per method; Allow still names all of them (RFC 9110 §15.5.6)."""
    response = api.put("/api/v1/notes/00000000-0000-0000-0000-000000000000")
    _assert_problem(response, 405)
    assert response.headers["allow"] == "DELETE, GET, PATCH"


def test_validation_error_names_the_field_and_never_echoes_input(api: TestClient) -> None:
    """422 lists each bad field by location; the submitted values (a password) are not echoed."""
    response = api.post("/login", json={"password": LEAKY_SECRET, "age": "old"})
    body = _assert_problem(response, 422)
    locations = {error["loc"] for error in body["errors"]}
    assert locations == {"body.username", "body.age"}
    assert "body.username" in body["detail"]
    assert LEAKY_SECRET not in response.text
    assert all("input" not in error for error in body["errors"])


def test_malformed_json_is_a_422_problem(api: TestClient) -> None:
    """A body that is not JSON is the client's problem, never a 500."""
    response = api.post(
        "/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    _assert_problem(response, 422)


def test_domain_error_maps_to_its_problem_type(api: TestClient) -> None:
    """A service's ConflictError becomes a 409 with its own type URI and extension members."""
    body = _assert_problem(api.get("/conflict"), 409)
    assert body["type"] == f"{SUPPORT_URL}problems/conflict"
    assert body["detail"] == "the note changed meanwhile"
    assert body["current_version"] == 3


def test_unhandled_exception_is_a_500_without_details(
    api: TestClient, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    """The client sees a generic 500 problem; the log has the traceback, redacted."""
    log_lines()
    response = api.get("/crash")
    body = _assert_problem(response, 500)
    assert "SELECT" not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text
    errors = [line for line in log_lines() if line.get("event") == "unhandled_exception"]
    assert len(errors) == 1
    assert errors[0]["request_id"] == body["correlation_id"]
    assert "exception" in errors[0]


def test_browser_gets_an_html_error_page_with_id_and_support_link(api: TestClient) -> None:
    """A browser's Accept header gets HTML carrying the same correlation id and the support link."""
    response = api.get("/crash", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-request-id"] in response.text
    assert f'href="{SUPPORT_URL}"' in response.text
    assert "SELECT" not in response.text


@pytest.mark.parametrize("accept", ["*/*", "application/json", "text/html;q=0.5,application/json"])
def test_api_clients_get_problem_json(api: TestClient, accept: str) -> None:
    """Anything short of a browser's explicit preference for HTML gets problem+json."""
    response = api.get("/nowhere", headers={"Accept": accept})
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", "text/xml", None],
)
def test_a_json_route_refuses_other_media_types_with_415(
    api: TestClient, content_type: str | None
) -> None:
    """A body that is not JSON on a JSON route is a 415 naming the media type, not a 422."""
    headers = {"content-type": content_type} if content_type else {}
    response = api.post("/login", content=b"username=a&age=1", headers=headers)
    body = _assert_problem(response, 415)
    assert body["type"] == f"{SUPPORT_URL}problems/unsupported-media-type"
    assert "application/json" in body["detail"]
    assert response.headers["accept-post"] == "application/json"


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/x+json"]
)
def test_json_media_types_are_accepted(api: TestClient, content_type: str) -> None:
    """application/json, with parameters or as a +json suffix, reaches the route."""
    response = api.post(
        "/login",
        content=b'{"username": "a", "password": "p", "age": 1}',
        headers={"content-type": content_type},
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "document",
    [
        b'{"username": "a", "username": "b", "password": "p", "age": 1}',
        b'{"username": "a", "password": "p", "age": 1, "x": {"k": 1, "k": 2}}',
    ],
)
def test_duplicate_json_keys_are_refused(api: TestClient, document: bytes) -> None:
    """A JSON object naming a member twice is a 400 naming the key, never "last one wins"."""
    response = api.post("/login", content=document, headers={"content-type": "application/json"})
    body = _assert_problem(response, 400)
    assert body["type"] == f"{SUPPORT_URL}problems/duplicate-json-key"
    assert body["key"] in ("username", "k")
    assert f'"{body["key"]}"' in body["detail"]


def test_openapi_documents_the_body_refusals(api: TestClient) -> None:
    """Operations with a request body declare 413 and 415 as problems in the contract."""
    operation = api.get("/openapi.json").json()["paths"]["/api/v1/notes"]["post"]
    for status in ("413", "415"):
        content = operation["responses"][status]["content"]
        assert content["application/problem+json"]["schema"] == {
            "$ref": "#/components/schemas/Problem"
        }
