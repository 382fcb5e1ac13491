"""`Location` values that never come from the request's `Host` header.

Starlette's `request.url_for` builds an absolute URL on whatever `Host` the client sent, so a
hostile Host (or a cache keyed without it) puts an attacker's origin into a `Location` that a
client follows or a replay stores. The reference is relative (RFC 9110 section 10.2.2 allows it),
or absolute on PUBLIC_BASE_URL when the operator configured one.
"""

from __future__ import annotations

from typing import Any, Protocol
from weakref import WeakKeyDictionary

from fastapi import FastAPI
from starlette.requests import Request

from app.http.routes import api_routes


class _PathBuilder(Protocol):
    def url_path_for(self, name: str, /, **path_params: Any) -> Any: ...


# Per app: the route that builds each (name, parameter names)' path. `app.url_path_for` asks
# every route of every router in turn, each refusing with an exception: 13 of them and about
# 60 µs per created note, where the route found once builds the path in about 4 µs
# (docs/performance.md).
_builders: WeakKeyDictionary[FastAPI, dict[tuple[str, frozenset[str]], _PathBuilder]] = (
    WeakKeyDictionary()
)


def _builder(app: FastAPI, name: str, params: frozenset[str]) -> _PathBuilder:
    """The first API route named `name` taking exactly `params`, as `url_path_for` picks it;
    none (a mount, a name nobody has): the app's router, which answers or raises as before."""
    known = _builders.setdefault(app, {})
    builder = known.get((name, params))
    if builder is None:
        for route in api_routes(app):
            if route.name == name and set(route.param_convertors) == params:
                builder = known[(name, params)] = route
                break
        else:
            return app.router
    return builder


def location_for(request: Request, route_name: str, **path_params: Any) -> str:
    """The URL of route `route_name`: on PUBLIC_BASE_URL if set, else a path from the root."""
    app = request.app
    path = _builder(app, route_name, frozenset(path_params)).url_path_for(route_name, **path_params)
    base = app.state.settings.public_base_url
    if base is not None:
        return f"{str(base).rstrip('/')}{path}"
    return f"{request.scope.get('root_path', '')}{path}"
