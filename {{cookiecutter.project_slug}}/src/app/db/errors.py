"""Database errors that reach the edge become problem responses, never a 500 with details.

Mapped by SQLSTATE class (PostgreSQL Appendix A). Anything unrecognised stays a plain 500, whose
body says nothing about the SQL.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.responses import Response

from app.db.retry import RETRYABLE_SQLSTATES, sqlstate_of
from app.errors import (
    ConflictError,
    DomainError,
    ForbiddenError,
    ServiceUnavailableError,
    UnprocessableError,
    render_domain_error,
)

_UNAVAILABLE_STATES = RETRYABLE_SQLSTATES | {"57014", "55P03", "53300", "57P01"}


def domain_error_for(sqlstate: str | None) -> DomainError | None:
    """The problem a database error stands for, or None when it is a bug (a 500)."""
    if sqlstate is None:
        return None
    if sqlstate in _UNAVAILABLE_STATES or sqlstate.startswith("08"):
        return ServiceUnavailableError("The database could not finish in time; retry shortly.")
    if sqlstate == "23505":
        return ConflictError("A resource with the same unique value already exists.")
    if sqlstate == "23503":
        return ConflictError("The request refers to a resource that does not exist.")
    if sqlstate.startswith(("22", "23")):
        return UnprocessableError("A value in the request is out of range or malformed.")
    if sqlstate == "42501":
        return ForbiddenError("The operation is not permitted for this client.")
    return None


async def _database_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, PoolTimeoutError):
        mapped: DomainError | None = ServiceUnavailableError("All database connections are busy.")
    elif isinstance(exc, ConnectionError | TimeoutError) or _lost_connection(exc):
        mapped = ServiceUnavailableError("The database is unreachable; retry shortly.")
    else:
        mapped = domain_error_for(sqlstate_of(exc))
    if mapped is None:
        raise exc
    return await render_domain_error(request, mapped)


def _lost_connection(exc: Exception) -> bool:
    return isinstance(exc, DBAPIError) and (
        exc.connection_invalidated or isinstance(exc.orig, OSError)
    )


def install_database_error_handlers(app: FastAPI) -> None:
    """Register the mapping; unmapped errors fall through to the generic 500.

    A refused or timed-out connection reaches here as the OS error itself (the driver raised it
    before there was a connection to wrap), hence the handler for ConnectionError too.
    """
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(PoolTimeoutError, _database_error)
    app.add_exception_handler(ConnectionError, _database_error)
