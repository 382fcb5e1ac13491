"""The app's API routes as the router serves them (prefixes applied), for checks and middleware.

FastAPI keeps included routers as nested entries in `app.routes`; `iter_route_contexts` flattens
them with their effective paths, the way the OpenAPI generator reads them.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts


def api_routes(app: FastAPI) -> list[RouteContext]:
    """Every `APIRoute`, including those of included routers, with its full path."""
    return [
        context
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
    ]
