"""`mount_router`: a feature's routes in the app's own route table, served and documented exactly
as `include_router` serves and documents them, and matched once per request, not twice."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import APIRouter, Body, Depends, FastAPI, Header, status
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel
from starlette.routing import Match, Route
from starlette.types import Scope

from app.http.routes import mount_router
from app.main import create_app
from app.settings import Settings


class CountedRoute(APIRoute):
    """An `APIRoute` that counts the times it was asked to match a request."""

    tried = 0

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        CountedRoute.tried += 1
        return super().matches(scope)


class Thing(BaseModel):
    id: int
    owner: str


async def owner(x_owner: Annotated[str, Header()] = "nobody") -> str:
    return x_owner


def _router() -> APIRouter:
    """A router using what the service's routers use: prefix, tags, shared responses and
    dependencies, a custom route class, response models, status codes and OpenAPI extras."""
    router = APIRouter(
        prefix="/api/v1/things",
        tags=["things"],
        responses={404: {"description": "No such thing"}},
        dependencies=[Depends(owner)],
        route_class=CountedRoute,
    )

    @router.get("/{thing_id}", response_model=Thing, summary="Read a thing", name="get_thing")
    async def get_thing(thing_id: int, who: Annotated[str, Depends(owner)]) -> Thing:
        return Thing(id=thing_id, owner=who)

    @router.post(
        "",
        status_code=status.HTTP_201_CREATED,
        deprecated=True,
        openapi_extra={"x-rate-limit": "5/minute"},
    )
    async def create_thing(name: Annotated[str, Body(embed=True)]) -> dict[str, str]:
        return {"created": name}

    return router


def _mounted(max_body_size: int | None = None) -> FastAPI:
    app = FastAPI()
    mount_router(app, _router(), max_body_size=max_body_size)
    return app


def _included() -> FastAPI:
    app = FastAPI()
    app.include_router(_router())
    return app


def test_the_openapi_document_is_the_one_include_router_gives() -> None:
    assert _mounted().openapi() == _included().openapi()


def test_mounted_routes_serve_with_their_dependencies_and_status_codes() -> None:
    with TestClient(_mounted()) as client:
        read = client.get("/api/v1/things/7", headers={"X-Owner": "ada"})
        created = client.post("/api/v1/things", json={"name": "lamp"})
        assert client.get("/api/v1/other/7").status_code == 404
    assert (read.status_code, read.json()) == (200, {"id": 7, "owner": "ada"})
    assert (created.status_code, created.json()) == (201, {"created": "lamp"})


def test_the_apps_dependency_overrides_reach_mounted_routes() -> None:
    """Tests replace dependencies through `app.dependency_overrides`; a mounted copy must obey."""
    app = _mounted()
    app.dependency_overrides[owner] = lambda: "override"
    with TestClient(app) as client:
        assert client.get("/api/v1/things/1").json() == {"id": 1, "owner": "override"}


@pytest.mark.parametrize(("make_app", "tries"), [(_mounted, 1), (_included, 2)])
def test_the_route_that_serves_a_request_is_matched_once_when_mounted(
    make_app: object, tries: int
) -> None:
    """The cost `mount_router` takes away: an included router matches the request twice, once
    to choose the router and once to choose the route in it (plus its scope bookkeeping)."""
    assert callable(make_app)
    with TestClient(make_app()) as client:
        CountedRoute.tried = 0
        assert client.get("/api/v1/things/7").status_code == 200
    assert CountedRoute.tried == tries


def _behind_another_router() -> FastAPI:
    """`_router()`'s routes mounted behind a router whose paths share only `/api/v1/`."""
    app = FastAPI()
    others = APIRouter(prefix="/api/v1/others", route_class=CountedRoute)

    @others.get("")
    async def list_others() -> list[int]:
        return [3]

    @others.get("/{other_id}")
    async def get_other(other_id: int) -> dict[str, int]:
        return {"other": other_id}

    mount_router(app, others)
    mount_router(app, _router())
    return app


@pytest.mark.parametrize("path", ["/api/v1/things/7", "/api/v1/others/3"])
def test_routes_whose_literal_parts_the_path_lacks_are_not_tried(path: str) -> None:
    """A request for a route deep in the table does not pay for the matching of every route in
    front of it: a route whose literal head (`/api/v1/others/`) the path does not hold, or whose
    literal tail (all of `/api/v1/others`) does not end it, turns it away by two string tests
    (docs/performance.md). Only the route that serves it runs its own matching."""
    with TestClient(_behind_another_router()) as client:
        CountedRoute.tried = 0
        assert client.get(path).status_code == 200
    assert CountedRoute.tried == 1


@pytest.mark.parametrize(
    ("method", "path", "answer"),
    [
        ("GET", "/api/v1/others/3", 200),
        ("GET", "/api/v1/things/7", 200),
        ("PUT", "/api/v1/things/7", 405),
        ("GET", "/api/v1/things/x", 422),
        ("GET", "/api/v1/thing/7", 404),
        ("GET", "/api/v1/others", 200),
        ("GET", "/api/v1/other", 404),
        ("GET", "/api/v1/others/", 307),
        ("GET", "/api/v1/things/7/", 307),
    ],
)
@pytest.mark.parametrize("root_path", ["", "/behind/proxy"])
def test_the_prefix_check_answers_as_the_route_patterns_do(
    method: str, path: str, answer: int, root_path: str
) -> None:
    """Served, refused with 405 or 422, not found, or redirected to the path without its slash:
    the same with the check as the patterns alone give. Behind a proxy the path carries the
    `root_path` in front (as uvicorn's `--root-path` gives it), which the patterns skip."""
    with TestClient(_behind_another_router(), root_path=root_path) as client:
        response = client.request(method, root_path + path, follow_redirects=False)
    assert response.status_code == answer


def test_max_body_size_bounds_the_routes_that_set_none_of_their_own() -> None:
    with TestClient(_mounted(max_body_size=32)) as client:
        small = client.post("/api/v1/things", json={"name": "lamp"})
        large = client.post("/api/v1/things", json={"name": "x" * 64})
    assert (small.status_code, large.status_code) == (201, 413)


def test_only_api_routes_can_be_mounted() -> None:
    router = APIRouter()
    router.routes.append(Route("/plain", lambda request: None))
    with pytest.raises(TypeError, match="API routes only"):
        mount_router(FastAPI(), router)


def included_routers(app: FastAPI) -> list[str]:
    """The prefix of each router the app includes as a node instead of mounting its routes."""
    return [
        getattr(route.original_router, "prefix", "") or "(no prefix)"
        for route in app.router.routes
        if hasattr(route, "original_router")
    ]


def test_every_router_of_the_service_is_mounted_not_included() -> None:
    """A feature added with `include_router` would cost each of its requests ~150 function calls
    (docs/performance.md); this names it. Mount it with `app.http.routes.mount_router`."""
    assert included_routers(create_app(Settings(environment="test"))) == []
    assert included_routers(_included()) == ["/api/v1/things"]
