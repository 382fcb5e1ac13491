"""`PrefixedRouter`: a request is not matched against the routes of a router it cannot be under."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute, APIRouter
from fastapi.testclient import TestClient
from starlette.routing import Match
from starlette.types import Scope

from app.http.routes import PrefixedRouter
from app.main import create_app
from app.settings import Settings


class CountedRoute(APIRoute):
    """An `APIRoute` that counts the requests it was asked to match."""

    tried = 0

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        CountedRoute.tried += 1
        return super().matches(scope)


def _app(router_class: type[APIRouter]) -> FastAPI:
    first = router_class(prefix="/first", route_class=CountedRoute)
    second = router_class(prefix="/second/{part}")

    @first.get("/{item}")
    async def first_item(item: str) -> dict[str, str]:
        return {"first": item}

    @second.get("/{item}")
    async def second_item(part: str, item: str) -> dict[str, str]:
        return {"part": part, "second": item}

    app = FastAPI()
    app.include_router(first)
    app.include_router(second)
    return app


def _get(app: FastAPI, path: str) -> tuple[int, object]:
    with TestClient(app) as client:
        response = client.get(path)
    return response.status_code, response.json()


def test_a_later_routers_request_never_tries_an_earlier_routers_routes() -> None:
    CountedRoute.tried = 0
    assert _get(_app(PrefixedRouter), "/second/a/b") == (200, {"part": "a", "second": "b"})
    assert CountedRoute.tried == 0


def test_a_plain_router_tries_every_route_it_holds() -> None:
    """The cost `PrefixedRouter` takes away: FastAPI's own router tries the route anyway."""
    CountedRoute.tried = 0
    assert _get(_app(APIRouter), "/second/a/b") == (200, {"part": "a", "second": "b"})
    assert CountedRoute.tried > 0


def test_paths_under_the_prefix_still_reach_their_routes_and_others_404() -> None:
    app = _app(PrefixedRouter)
    assert _get(app, "/first/x") == (200, {"first": "x"})
    assert _get(app, "/firstx")[0] == 404
    assert _get(app, "/elsewhere")[0] == 404


def test_a_router_included_under_a_further_prefix_still_serves_its_routes() -> None:
    """`include_router(router, prefix=...)` puts the router's own prefix after another one."""
    router = PrefixedRouter(prefix="/things")

    @router.get("/{item}")
    async def thing(item: str) -> dict[str, str]:
        return {"thing": item}

    app = FastAPI()
    app.include_router(router, prefix="/v2")
    assert _get(app, "/v2/things/x") == (200, {"thing": "x"})
    assert _get(app, "/v2/other/x")[0] == 404


def unprefixed_routers(app: FastAPI) -> list[str]:
    """The prefix of each router the app includes that is a plain `APIRouter` with a prefix."""
    return [
        router.prefix
        for route in app.router.routes
        if isinstance(router := getattr(route, "original_router", None), APIRouter)
        and router.prefix
        and not isinstance(router, PrefixedRouter)
    ]


def test_every_router_of_the_service_with_a_prefix_turns_other_paths_away() -> None:
    """A feature mounted on a plain `APIRouter` would make every later route slower; named here."""
    assert unprefixed_routers(create_app(Settings(environment="test"))) == []
    app = FastAPI()
    app.include_router(APIRouter(prefix="/api/v1/things"))
    assert unprefixed_routers(app) == ["/api/v1/things"]
