"""The app's API routes as the router serves them (prefixes applied), for checks and middleware.

FastAPI keeps included routers as nested entries in `app.routes`; `iter_route_contexts` flattens
them with their effective paths, the way the OpenAPI generator reads them.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from starlette.routing import compile_path


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
