"""Every /api/ route declares what authenticates it, and every cookie-authenticated unsafe route
is refused cross-origin (SEC-TOKENS, SEC-CSRF). A new route that forgets either fails here."""

from __future__ import annotations

import re
import uuid

from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from app.auth.principal import CurrentPrincipal
from app.auth.route_principals import PUBLIC, declared_principals, uses_cookies
from app.http.routes import api_routes
from app.main import create_app
from app.settings import Settings

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
EVIL = "https://evil.example"


def undeclared_routes(app: FastAPI) -> list[str]:
    """`METHODS path` of each /api/ route that declares no principal (nor `PUBLIC`)."""
    return [
        f"{','.join(sorted(route.methods or ()))} {route.path}"
        for route in api_routes(app)
        if (route.path or "").startswith("/api/") and not declared_principals(route.dependant)
    ]


def cookie_authenticated_unsafe_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path with ids filled in) of each unsafe /api/ route a cookie can authenticate."""
    found = []
    for route in api_routes(app):
        if not (route.path or "").startswith("/api/"):
            continue
        if not uses_cookies(declared_principals(route.dependant)):
            continue
        path = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), route.path or "")
        found += [(method, path) for method in sorted((route.methods or set()) & UNSAFE)]
    return found


def test_every_api_route_declares_its_principal() -> None:
    app = create_app(Settings(environment="test"))
    assert any(route.path == "/api/v1/notes" for route in api_routes(app))
    assert undeclared_routes(app) == []


def test_a_route_that_forgets_its_principal_is_named() -> None:
    router = APIRouter(prefix="/api/v1/gadgets")

    @router.get("")
    async def list_gadgets(principal: CurrentPrincipal) -> list[str]:
        return []

    @router.post("/preview", dependencies=[PUBLIC])
    async def preview() -> dict[str, str]:
        return {}

    @router.delete("/{gadget_id}")
    async def delete_gadget(gadget_id: uuid.UUID) -> None:  # forgot CurrentPrincipal
        return None

    app = FastAPI()
    app.include_router(router)
    assert undeclared_routes(app) == ["DELETE /api/v1/gadgets/{gadget_id}"]
    assert [method for method, _ in cookie_authenticated_unsafe_routes(app)] == []


def test_every_cookie_authenticated_unsafe_route_is_refused_cross_origin(
    client: TestClient,
) -> None:
    """With a session cookie and a foreign Origin: 403 from the CSRF check, before the route."""
    routes = cookie_authenticated_unsafe_routes(client.app)  # type: ignore[arg-type]
    assert ("POST", "/api/v1/notes") in routes
    assert ("POST", "/api/v1/auth/refresh") in routes
    answers = {
        f"{method} {path}": client.request(
            method,
            path,
            headers={"Origin": EVIL, "Cookie": "__Host-access=x; __Secure-refresh=y"},
        )
        for method, path in routes
    }
    refused = {
        name: (response.status_code, response.json().get("type", "").rsplit("/", 1)[-1])
        for name, response in answers.items()
    }
    assert refused == dict.fromkeys(answers, (403, "cross-origin-request"))
