"""The OpenAPI document tells the truth about errors (API-CONTRACTS).

FastAPI documents a 422 as `application/json` with its own validation schema, and no other error.
This service answers every error as RFC 9457 `application/problem+json` (or an HTML page for a
browser), so the document says exactly that: one `Problem` schema, used by every 4xx and 5xx an
operation declares plus `4XX` and `5XX` catch-alls for the errors any route can give (401, 404,
429, 503 ...). tests/test_schema_fuzzing.py checks the running service against this document.

It also says how to authenticate: security schemes for the API key and the session cookies, and
on each operation the ones its dependencies accept, so Swagger UI's "Authorize" works. And it
says what a request must carry: the `Idempotency-Key` a create requires, in the syntax it takes;
`operation_link` builds the links from a create to what can be done with the created resource.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from app.auth.cookie_names import ACCESS_COOKIE, REFRESH_COOKIE
from app.auth.route_principals import declared_principals
from app.http.problems import PROBLEM_JSON
from app.http.routes import api_routes
from app.idempotency.keys import HEADER as IDEMPOTENCY_KEY
from app.idempotency.keys import KEY_DESCRIPTION, KEY_SCHEMA

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details, with the request's correlation id.",
    "required": ["type", "title", "status", "detail", "instance", "correlation_id", "support"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "correlation_id": {"type": "string"},
        "support": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["loc", "msg", "type"],
                "properties": {
                    "loc": {"type": "string"},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}
PROBLEM_CONTENT: dict[str, Any] = {
    PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}},
    "text/html": {"schema": {"type": "string"}},
}
CATCH_ALL = {
    "4XX": "The request was refused; the problem's `type` and `detail` say why.",
    "5XX": "The service could not answer now; retry after `Retry-After` when present.",
}
# Every operation that takes a body can be refused these (app.middleware.body_limit, json_body).
BODY_REFUSALS = {
    "400": "The body is malformed: for JSON, an object names a key twice (`duplicate-json-key`).",
    "408": "The body did not arrive within REQUEST_BODY_TIMEOUT (`request-timeout`).",
    "413": "The body is larger than MAX_REQUEST_BODY_BYTES (`content-too-large`).",
    "415": "The body is not in the media type the operation takes (`unsupported-media-type`).",
}
SECURITY_SCHEMES: dict[str, Any] = {
    "ApiKey": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "ak_<key id>_<secret>",
        "description": "A tenant's API key: `create-tenant` or `api-keys create` prints one.",
    },
    "SessionCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": ACCESS_COOKIE,
        "description": "A browser session: `POST /api/v1/auth/login` sets it. Unsafe methods "
        "also need an allowed `Origin` (CSRF check).",
    },
    "RefreshCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": REFRESH_COOKIE,
        "description": "The session's refresh cookie: `POST /api/v1/auth/refresh` needs it "
        "(401 without); `POST /api/v1/auth/logout` works without it (always 204).",
    },
}
# Declared principal kind (app.auth.route_principals) → the OpenAPI security requirements.
SECURITY_BY_PRINCIPAL: dict[str, list[dict[str, list[str]]]] = {
    "api_key_or_session": [{"ApiKey": []}, {"SessionCookie": []}],
    "session": [{"SessionCookie": []}],
    # `{}`: optional, since logout answers 204 without one (ending an ended session).
    "refresh_cookie": [{"RefreshCookie": []}, {}],
}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def document_problems(document: dict[str, Any]) -> None:
    """Rewrite every error response of `document` (an OpenAPI dict) to the Problem schema."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422, replaced below
        schemas.pop(name, None)
    for path_item in document.get("paths", {}).values():
        for method, operation in path_item.items():
            if method in HTTP_METHODS:
                responses = operation.setdefault("responses", {})
                if "requestBody" in operation:
                    for code, description in BODY_REFUSALS.items():
                        responses.setdefault(code, {"description": description})
                _document_operation(responses)


def _document_operation(responses: dict[str, Any]) -> None:
    for code, response in responses.items():
        if code[0] in "45":
            response["content"] = PROBLEM_CONTENT
    for code, description in CATCH_ALL.items():
        responses.setdefault(code, {"description": description, "content": PROBLEM_CONTENT})


def document_security(document: dict[str, Any], app: FastAPI) -> None:
    """Declare the ways to authenticate and, on each operation, the ones it accepts (as its
    dependencies declare them, app.auth.route_principals), so Swagger UI's Authorize works.
    Public operations get no `security`."""
    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    paths = document.get("paths", {})
    for context in api_routes(app):
        route = context.original_route
        if not isinstance(route, APIRoute):  # api_routes keeps only these; for the type checker
            continue
        path_item = paths.get(context.path or "", {})
        requirements = [
            requirement
            for kind in sorted(declared_principals(route.dependant))
            for requirement in SECURITY_BY_PRINCIPAL.get(kind, [])
        ]
        for method in context.methods or ():
            operation = path_item.get(method.lower())
            if operation is not None and requirements:
                operation["security"] = requirements


def without_null(schema: dict[str, Any]) -> None:
    """Make `anyOf: [X, {type: null}]` plain X: for a parameter, or a field refusing `null`,
    `None` means "not sent", which the document says by not requiring it."""
    branches = schema.get("anyOf")
    if branches and {"type": "null"} in branches and len(branches) == 2:
        del schema["anyOf"]
        schema.update(next(branch for branch in branches if branch != {"type": "null"}))


def document_parameters(document: dict[str, Any]) -> None:
    """A query or header parameter is a string when sent, never `null` (FastAPI's `X | None`);
    `Idempotency-Key` is required, in the syntax it takes (its dependency declares it optional
    to answer a missing one with 400, not FastAPI's 422)."""
    for path_item in document.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in HTTP_METHODS:
                continue
            for parameter in operation.get("parameters", []):
                without_null(parameter.get("schema", {}))
                if (parameter["in"], parameter["name"].lower()) == ("header", "idempotency-key"):
                    parameter.update(
                        name=IDEMPOTENCY_KEY,
                        required=True,
                        schema=KEY_SCHEMA,
                        description=KEY_DESCRIPTION,
                    )


def operation_link(
    path: str, method: str, description: str, parameters: dict[str, str]
) -> dict[str, Any]:
    """An OpenAPI link to the operation `method` `path` of this document, its parameters taken
    from the response by runtime expressions (`$response.body#/id`). Clients read it as "what
    can be done next"; the stateful fuzz test (tests/test_schema_fuzzing.py) follows it."""
    pointer = path.replace("~", "~0").replace("/", "~1")
    return {
        "operationRef": f"#/paths/{pointer}/{method}",
        "description": description,
        "parameters": parameters,
    }


def retry_link(path: str) -> dict[str, Any]:
    """The link from a create's answer to its retry (`POST path`): the same body with the same
    `Idempotency-Key` answers this same resource again, or 409 once it has been deleted."""
    link = operation_link(
        path,
        "post",
        "Retry: the same request with the same Idempotency-Key answers this resource again "
        "(409 `idempotency-key-resource-deleted` once it is deleted)",
        {f"header.{IDEMPOTENCY_KEY}": f"$request.header.{IDEMPOTENCY_KEY}"},
    )
    return {**link, "requestBody": "$request.body"}


def install_problem_documentation(app: FastAPI) -> None:
    """Make `app.openapi()` return the document with its error responses rewritten, its
    security declared and its parameters stated as they are taken, once."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            document_problems(document)
            document_security(document, app)
            document_parameters(document)
        return generate()

    app.openapi = openapi  # type: ignore[method-assign]
