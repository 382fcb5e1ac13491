"""The app's API routes as the router serves them (prefixes applied), for checks and middleware,
and `PrefixedRouter`, the router every feature mounts its routes on.

FastAPI keeps included routers as nested entries in `app.routes`; `iter_route_contexts` flattens
them with their effective paths, the way the OpenAPI generator reads them.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from starlette.routing import Match, compile_path
from starlette.types import Scope


class PrefixedRouter(APIRouter):
    """An `APIRouter` that turns away a path outside its `prefix` before trying its routes.

    FastAPI keeps each included router as one node of the app's route table and matches a request
    against every route of every router before the one that serves it, whatever their prefixes
    (fastapi/fastapi#16159 proposes a prefix check upstream). Every route of this router has the
    literal part of its prefix in its path, after any prefix it is included under (and the
    `root_path`), so a path without it matches none of them: each feature added in front of
    another then costs the other's requests one substring test, not a regular expression per
    route (pair 3c of docs/performance.md).
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        literal = self.prefix.partition("{")[0]  # a prefix may hold path parameters
        if literal and literal not in scope["path"]:
            return Match.NONE, {}
        return super().matches(scope)


def api_routes(app: FastAPI) -> list[RouteContext]:
    """Every `APIRoute`, including those of included routers, with its full path."""
    return [
        context
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
    ]


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route serves at `path`, for the `Allow` header of a 405.

    Starlette answers 405 from the first route whose path matches, so its `Allow` names only
    that route's methods, while FastAPI makes one route per method (RFC 9110 section 15.5.6).
    """
    methods: set[str] = set()
    for context in iter_route_contexts(app.routes):
        if context.path and context.methods and compile_path(context.path)[0].match(path):
            methods |= context.methods
    return sorted(methods)
