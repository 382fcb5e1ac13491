"""The app's API routes as the router serves them (prefixes applied), for checks and middleware,
and `mount_router`, how every feature puts its `APIRouter` on the app.

FastAPI keeps included routers as nested entries in `app.routes`; `iter_route_contexts` flattens
them with their effective paths, the way the OpenAPI generator reads them.
"""

from __future__ import annotations

from typing import Any, cast

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from starlette.routing import Match, compile_path
from starlette.types import Scope

# What a route keeps from its router when it is declared (tags, responses, dependencies, the
# response class are already merged in), and so what a mounted copy must carry over.
_ROUTE_SETTINGS = (
    "response_model",
    "status_code",
    "tags",
    "dependencies",
    "summary",
    "description",
    "response_description",
    "responses",
    "deprecated",
    "methods",
    "operation_id",
    "response_model_include",
    "response_model_exclude",
    "response_model_by_alias",
    "response_model_exclude_unset",
    "response_model_exclude_defaults",
    "response_model_exclude_none",
    "include_in_schema",
    "response_class",
    "name",
    "callbacks",
    "openapi_extra",
    "generate_unique_id_function",
    "strict_content_type",
    "form_limits",
)


def mount_router(app: FastAPI, router: APIRouter, *, max_body_size: int | None = None) -> None:
    """Put each route of `router` in the app's own route table, as `include_router` did before
    FastAPI 0.137: same paths, same OpenAPI, same dependency overrides.

    Since 0.137 `include_router` keeps the router as one node of `app.routes`, and a request it
    serves is matched twice through that node (once to choose the router, once to choose the
    route), with the node's bookkeeping in the request's scope: about 150 function calls, 6 % of a
    tenant-scoped read (docs/performance.md). A flat table matches each route once.
    `max_body_size` is `include_router`'s: the limit of every route that sets none of its own.
    The routes are copied when it runs: mount a router once its routes are declared. Each copy
    turns away a request whose path lacks the literal parts of its own before any other work
    (`_LiteralCheck`).
    """
    for route in router.routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"mount_router mounts API routes only, not {route!r}")
        settings = {name: getattr(route, name) for name in _ROUTE_SETTINGS}
        app.router.add_api_route(
            route.path,
            route.endpoint,
            route_class_override=_checking_literals(type(route)),
            max_body_size=route.max_body_size if route.max_body_size is not None else max_body_size,
            **settings,
        )


# Read once: on Python 3.11 looking a member up on its Enum class (`Match.NONE`) takes about as
# long as the substring test itself.
_NO_MATCH = Match.NONE


class _LiteralCheck:
    """Turns a request away by two string tests when its path lacks the literal parts of the
    route's path, the answer its pattern would give: the part before the first parameter
    (`/api/v1/notes/` of `/api/v1/notes/{note_id}`) must be in it, and the part after the last
    one must end it (all of `/api/v1/notes`, which so refuses `/api/v1/notes/{note_id}`'s paths).

    Starlette tries the routes of a table in order, and a request for a route near the end pays
    for every one in front of it: FastAPI's `matches` is three Python calls and a regular
    expression per route, about 10,000 instructions, 5 % of a tenant-scoped read behind eleven
    routes (docs/performance.md). `in`, not `startswith`: the path may still carry the
    `root_path` the pattern is matched without, so the tests only ever refuse what the pattern
    would refuse too. A path that passes is matched by the route's own `matches`.
    """

    path: str
    _literal_head: str
    _literal_tail: str

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._literal_head = self.path.partition("{")[0]
        self._literal_tail = self.path.rpartition("}")[2]

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path: str = scope["path"]
        if not path.endswith(self._literal_tail) or self._literal_head not in path:
            return _NO_MATCH, {}
        matched: tuple[Match, Scope] = super().matches(scope)  # type: ignore[misc]
        return matched


_LITERAL_CHECKED: dict[type[APIRoute], type[APIRoute]] = {}


def _checking_literals(route_class: type[APIRoute]) -> type[APIRoute]:
    """`route_class` (`APIRoute` or a feature's own subclass) with `_LiteralCheck` first."""
    if route_class not in _LITERAL_CHECKED:
        name = f"LiteralChecked{route_class.__name__}"
        made = type(name, (_LiteralCheck, route_class), {})
        _LITERAL_CHECKED[route_class] = cast(type[APIRoute], made)
    return _LITERAL_CHECKED[route_class]


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
