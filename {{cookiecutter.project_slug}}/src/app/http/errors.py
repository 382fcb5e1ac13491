"""Domain error types and the handlers that turn every error into a problem response.

Services raise these types; they never build HTTP responses. A new error is a subclass with its own
`status`, `slug` and `title`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Scope

from app.http.problems import problem_body, render_problem, status_title
from app.http.routes import allowed_methods


class DomainError(Exception):
    """Base of the errors a service may raise; each maps to one problem type."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions

    def response_headers(self) -> dict[str, str]:
        return {}


class UnauthorizedError(DomainError):
    status = 401
    slug = "unauthorized"
    title = "Authentication required"

    def response_headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="api"'}


class ForbiddenError(DomainError):
    status = 403
    slug = "forbidden"
    title = "Forbidden"


class NotFoundError(DomainError):
    status = 404
    slug = "not-found"
    title = "Resource not found"


class ConflictError(DomainError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class PreconditionFailedError(DomainError):
    status = 412
    slug = "precondition-failed"
    title = "Precondition failed"


class UnprocessableError(DomainError):
    status = 422
    slug = "unprocessable"
    title = "Unprocessable request"


class RequestTimeoutError(DomainError):
    status = 408
    slug = "request-timeout"
    title = "Request not received in time"

    def response_headers(self) -> dict[str, str]:
        return {"Connection": "close"}


class ContentTooLargeError(DomainError):
    status = 413
    slug = "content-too-large"
    title = "Content too large"

    def response_headers(self) -> dict[str, str]:
        # The rest of the body is never read, so the connection cannot carry another request.
        return {"Connection": "close"}


class UnsupportedMediaTypeError(DomainError):
    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"

    def __init__(self, detail: str, method: str, accepted: str, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        # RFC 5789 names Accept-Patch for PATCH; Accept-Post (W3C LDP) is its POST twin.
        self.accept_field = "Accept-Patch" if method == "PATCH" else "Accept-Post"
        self.accepted = accepted

    def response_headers(self) -> dict[str, str]:
        return {self.accept_field: self.accepted}


class DuplicateJsonKeyError(DomainError):
    """RFC 8259 leaves duplicate names undefined and parsers disagree on which one wins."""

    status = 400
    slug = "duplicate-json-key"
    title = "Duplicate key in JSON body"


class HeaderFieldsTooLargeError(DomainError):
    status = 431
    slug = "header-fields-too-large"
    title = "Request header fields too large"


class ServiceUnavailableError(DomainError):
    status = 503
    slug = "service-unavailable"
    title = "Service temporarily unavailable"

    def __init__(self, detail: str, retry_after: int = 1, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.retry_after = retry_after

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class OverloadedError(ServiceUnavailableError):
    slug = "overloaded"
    title = "Service overloaded"


class RequestBodyRefused(StarletteHTTPException):
    """Carries a `DomainError` raised while a route reads its body (a limit or a deadline).

    FastAPI's body reader lets only `HTTPException` out unchanged and turns anything else into a
    generic 400, so the error travels as this and is rendered as the error it carries.
    """

    def __init__(self, error: DomainError) -> None:
        super().__init__(error.status, error.detail)
        self.error = error


def problem_type_uri(support_url: str, slug: str) -> str:
    """Problem types resolve to a page under the support site that explains them."""
    return f"{support_url.rstrip('/')}/problems/{slug}"


def _support_url(request: Request) -> str:
    return str(request.app.state.settings.support_url)


def domain_problem(scope: Scope, error: DomainError, support_url: str) -> Response:
    """The problem response for `error`; middleware outside the handlers answer with it too."""
    body = problem_body(
        error.status,
        error.title,
        error.detail,
        support_url,
        problem_type=problem_type_uri(support_url, error.slug),
        **error.extensions,
    )
    return render_problem(scope, body, error.response_headers())


async def render_domain_error(request: Request, exc: Exception) -> Response:
    """The problem response for a `DomainError`."""
    assert isinstance(exc, DomainError)  # noqa: S101 - registered for DomainError only
    return domain_problem(request.scope, exc, _support_url(request))


async def _carried_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestBodyRefused)  # noqa: S101 - registered for it only
    return domain_problem(request.scope, exc.error, _support_url(request))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for it only
    title = status_title(exc.status_code)
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else title
    body = problem_body(exc.status_code, title, detail, _support_url(request))
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request.app, request.scope["path"]))
    return render_problem(request.scope, body, headers)


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for it only
    # Only location, message and type: the submitted input may be a password (pydantic#9139).
    errors = [
        {"loc": _field_path(tuple(item["loc"])), "msg": item["msg"], "type": item["type"]}
        for item in exc.errors()
    ]
    fields = ", ".join(f"{error['loc']}: {error['msg']}" for error in errors[:5])
    support = _support_url(request)
    body = problem_body(
        422,
        "Request validation failed",
        f"The request is not valid. {fields}",
        support,
        problem_type=problem_type_uri(support, "validation-error"),
        errors=errors,
    )
    return render_problem(request.scope, body)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers; unhandled exceptions are caught by `UnhandledErrorMiddleware`."""
    app.add_exception_handler(DomainError, render_domain_error)
    app.add_exception_handler(RequestBodyRefused, _carried_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
