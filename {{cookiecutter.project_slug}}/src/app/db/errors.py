"""Database errors that reach the edge become problem responses, never a 500 with details.

Mapped by SQLSTATE class (PostgreSQL Appendix A). Anything unrecognised stays a plain 500, whose
body says nothing about the SQL.

The connection class is one decision, wherever the error comes from: the database cannot be used
*right now*, so the client gets 503 with `Retry-After`. That covers an OS-level failure to connect
or a client-side timeout (`OSError`, which includes `ConnectionError` and `TimeoutError`), a
connection lost mid-query, SQLSTATE class 08 (connection exception), class 57 (operator
intervention: shutting down, starting up, crash recovery, statement cancelled), class 53
(insufficient resources: too many connections), asyncpg's own connection errors, and a pool that
has no free connection in time.
"""

from __future__ import annotations

from asyncpg.exceptions import PostgresError  # type: ignore[import-untyped]  # asyncpg ships no type information
from fastapi import FastAPI, Request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.responses import Response

from app.db.retry import RETRYABLE_SQLSTATES, sqlstate_of
from app.http.errors import (
    ConflictError,
    DomainError,
    ForbiddenError,
    ServiceUnavailableError,
    UnprocessableError,
    render_domain_error,
)
from app.observability.logging import get_logger

log = get_logger("app.db")

# 08 connection exception, 57 operator intervention (57014 statement timeout, 57P01 shutdown,
# 57P02 crash, 57P03 starting up), 53 insufficient resources (53300 too many connections).
_UNAVAILABLE_CLASSES = ("08", "57", "53")
_BUSY_STATES = RETRYABLE_SQLSTATES | {"55P03"}  # 55P03: lock_timeout fired


def domain_error_for(sqlstate: str | None) -> DomainError | None:
    """The problem a database error stands for, or None when it is a bug (a 500)."""
    if sqlstate is None:
        return None
    if sqlstate in _BUSY_STATES or sqlstate.startswith(_UNAVAILABLE_CLASSES):
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


def connection_problem(exc: BaseException) -> str | None:
    """Why `exc` means the database cannot be reached right now, or None if it does not.

    The answer is a short label for logs (`pool_timeout`, `timeout`, `unreachable`,
    `connection_lost`, `sqlstate_57P03`…), never the error's message.
    """
    if isinstance(exc, PoolTimeoutError):
        return "pool_timeout"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, OSError):
        return "unreachable"
    if isinstance(exc, DBAPIError):
        if isinstance(exc.orig, TimeoutError):
            return "timeout"
        if exc.connection_invalidated or isinstance(exc.orig, OSError):
            return "connection_lost"
    sqlstate = sqlstate_of(exc)
    if sqlstate is not None and sqlstate.startswith(("08", "57P", "53")):
        return f"sqlstate_{sqlstate}"
    return None


async def _database_error(request: Request, exc: Exception) -> Response:
    problem = connection_problem(exc)
    mapped: DomainError | None
    if problem is not None:
        log.warning("database_unavailable", reason=problem, error_type=type(exc).__name__)
        detail = (
            "All database connections are busy; retry shortly."
            if problem == "pool_timeout"
            else "The database is unavailable; retry shortly."
        )
        mapped = ServiceUnavailableError(detail)
    else:
        mapped = domain_error_for(sqlstate_of(exc))
    if mapped is None:
        raise exc
    return await render_domain_error(request, mapped)


def install_database_error_handlers(app: FastAPI) -> None:
    """Register the mapping; unmapped errors fall through to the generic 500.

    A refused or timed-out connection reaches here as the OS error itself (the driver raised it
    before there was a connection to wrap), and asyncpg's own errors can escape unwrapped from
    a connect, hence the handlers beside SQLAlchemy's DBAPIError.
    """
    for error_type in (DBAPIError, PoolTimeoutError, OSError, PostgresError):
        app.add_exception_handler(error_type, _database_error)
