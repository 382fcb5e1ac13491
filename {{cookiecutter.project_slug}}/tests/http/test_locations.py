"""`location_for` builds the same path as `app.url_path_for`, from the route it finds once per
app (the created note's and the upload's `Location`; the Host header stays out: notes tests)."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.routing import NoMatchFound

from app.http.locations import location_for


def _app(include_prefix: str = "") -> FastAPI:
    router = APIRouter(prefix="/things")

    @router.get("/{thing_id}", name="get_thing")
    async def get_thing(thing_id: uuid.UUID) -> None: ...

    @router.get("/{thing_id}/parts/{part}", name="get_thing")
    async def get_part(thing_id: uuid.UUID, part: int) -> None: ...

    app = FastAPI()
    app.include_router(router, prefix=include_prefix)
    app.state.settings = SimpleNamespace(public_base_url=None)
    return app


def _request(app: FastAPI, root_path: str = "") -> Request:
    return Request({"type": "http", "app": app, "root_path": root_path, "headers": []})


def test_the_path_is_the_one_url_path_for_builds() -> None:
    app, thing = _app(), uuid.uuid4()
    assert location_for(_request(app), "get_thing", thing_id=thing) == f"/things/{thing}"
    # The same name with other parameters is another route, as url_path_for tells them apart.
    part = location_for(_request(app), "get_thing", thing_id=thing, part=3)
    assert part == f"/things/{thing}/parts/3"
    assert part == app.url_path_for("get_thing", thing_id=thing, part=3)
    assert location_for(_request(app, "/base"), "get_thing", thing_id=thing).startswith("/base/")


def test_each_app_builds_its_own_paths() -> None:
    """The route found for one app is never used for another (the same router under another
    prefix, or another app in the same process)."""
    thing = uuid.uuid4()
    plain, nested = _app(), _app(include_prefix="/v2")
    assert location_for(_request(plain), "get_thing", thing_id=thing) == f"/things/{thing}"
    assert location_for(_request(nested), "get_thing", thing_id=thing) == f"/v2/things/{thing}"
    assert location_for(_request(plain), "get_thing", thing_id=thing) == f"/things/{thing}"


def test_an_unknown_route_or_parameter_raises_as_url_path_for_does() -> None:
    app = _app()
    with pytest.raises(NoMatchFound):
        location_for(_request(app), "no_such_route", thing_id=uuid.uuid4())
    with pytest.raises(NoMatchFound):
        location_for(_request(app), "get_thing", other=1)
