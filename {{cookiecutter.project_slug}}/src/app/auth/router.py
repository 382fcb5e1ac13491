"""`/api/v1/auth`: sign in, refresh, sign out, change the password, and who the session is.

Tokens travel only in cookies (app.auth.session_cookies), never in a body. Every answer is
`Cache-Control: no-store`. The POSTs are exempt from `Idempotency-Key`: each says why.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from app.auth.cookie_names import ACCESS_COOKIE, AUTH_PATH, DEVICE_COOKIE, REFRESH_COOKIE
from app.auth.login_limits import LoginLimiter
from app.auth.principal import Principal, SessionPrincipal
from app.auth.route_principals import PUBLIC, REFRESH_COOKIE_AUTH
from app.auth.session_cookies import clear_session_cookies, set_session_cookies
from app.auth.session_schemas import LoginRequest, PasswordChange, SessionOut, session_out
from app.auth.sessions import IssuedSession, SessionService
from app.auth.tokens import verify_access_token
from app.db.session import DatabaseDep
from app.http.client_ip import client_ip
from app.http.errors import ForbiddenError, UnauthorizedError
from app.idempotency.keys import idempotency_exempt
from app.tenants.users import InvalidCredentials, check_credentials, set_password

router = APIRouter(prefix=AUTH_PATH, tags=["auth"])
NO_STORE = "no-store"


async def get_sessions(request: Request, database: DatabaseDep) -> SessionService:
    return SessionService(database, request.app.state.settings)


async def get_login_limiter(request: Request) -> LoginLimiter:
    """One limiter per app: its Redis-down fallback counts in this process's memory."""
    limiter: LoginLimiter | None = getattr(request.app.state, "login_limiter", None)
    if limiter is None:
        limiter = LoginLimiter.from_settings(request.app.state.settings, request.app.state.redis)
        request.app.state.login_limiter = limiter
    return limiter


SessionsDep = Annotated[SessionService, Depends(get_sessions)]
LoginLimiterDep = Annotated[LoginLimiter, Depends(get_login_limiter)]


def _answer(response: Response, sessions: SessionService, issued: IssuedSession) -> SessionOut:
    refresh = timedelta(days=sessions.settings.refresh_token_days)
    set_session_cookies(response, issued, sessions.access_lifetime, refresh)
    response.headers["Cache-Control"] = NO_STORE
    claims = issued.claims
    return session_out(claims.user_id, claims.email, claims.tenant_id, claims.role)


@router.post(
    "/login",
    response_model=SessionOut,
    dependencies=[PUBLIC],
    openapi_extra=idempotency_exempt("a repeated login starts another session; no side effect"),
)
async def login(
    payload: LoginRequest,
    request: Request,
    response: Response,
    database: DatabaseDep,
    sessions: SessionsDep,
    limiter: LoginLimiterDep,
) -> SessionOut:
    """Sign in: sets the access, refresh and device cookies; answers who signed in.

    A wrong password and an unknown email get the same 401. Limited per account and per IP (429
    with `Retry-After`). `tenant_id` is needed only for an account of several tenants (422).
    """
    await limiter.check(payload.email, _client(request))
    grant = await check_credentials(database, payload.email, payload.password, payload.tenant_id)
    await limiter.reset(payload.email)
    return _answer(response, sessions, await sessions.start(grant))


@router.post(
    "/refresh",
    response_model=SessionOut,
    dependencies=[REFRESH_COOKIE_AUTH],
    openapi_extra=idempotency_exempt("rotation: a repeat within the grace window is served"),
)
async def refresh(request: Request, response: Response, sessions: SessionsDep) -> SessionOut:
    """Rotate: new access and refresh cookies; the presented refresh token dies. It must come
    with its device cookie. A rotated token presented again revokes its whole family (401)."""
    cookies = request.cookies
    issued = await sessions.rotate(cookies.get(REFRESH_COOKIE), cookies.get(DEVICE_COOKIE))
    return _answer(response, sessions, issued)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[REFRESH_COOKIE_AUTH],
    openapi_extra=idempotency_exempt("ending an ended session changes nothing"),
)
async def logout(request: Request, sessions: SessionsDep) -> Response:
    """End this session (its refresh family) and clear the cookies. Always 204."""
    access = request.cookies.get(ACCESS_COOKIE)
    claims = verify_access_token(sessions.settings.signing_keys, access) if access else None
    family = (claims.tenant_id, claims.family_id) if claims is not None else None
    await sessions.end(request.cookies.get(REFRESH_COOKIE), family)
    return _cleared()


@router.post(
    "/logout-all",
    status_code=status.HTTP_204_NO_CONTENT,
    openapi_extra=idempotency_exempt("revoking revoked sessions changes nothing"),
)
async def logout_all(principal: SessionPrincipal, sessions: SessionsDep) -> Response:
    """End every session of the signed-in user, on every device and in every tenant."""
    user_id, _, _ = _signed_in(principal)
    await sessions.end_all(user_id, "logout_all")
    return _cleared()


@router.post(
    "/password",
    status_code=status.HTTP_204_NO_CONTENT,
    openapi_extra=idempotency_exempt("a repeat fails on the changed current password"),
)
async def change_password(
    payload: PasswordChange,
    principal: SessionPrincipal,
    request: Request,
    database: DatabaseDep,
    sessions: SessionsDep,
    limiter: LoginLimiterDep,
) -> Response:
    """Change the password (the current one first, 403 when wrong; limited like login); every
    session of the user ends, this one too, and the cookies are cleared."""
    user_id, email, _ = _signed_in(principal)
    await limiter.check(email, _client(request))
    try:
        await check_credentials(database, email, payload.current_password, principal.tenant_id)
    except InvalidCredentials:
        # Not 401: the session is fine, only the password typed is wrong.
        raise ForbiddenError("The current password is not correct.") from None
    await set_password(database, user_id, payload.new_password, email=email)
    await sessions.end_all(user_id, "password_change")
    return _cleared()


@router.get("/session", response_model=SessionOut)
async def current_session(principal: SessionPrincipal, response: Response) -> SessionOut:
    """Who the session cookie speaks for: user, tenant and current role (401 without one)."""
    user_id, email, role = _signed_in(principal)
    response.headers["Cache-Control"] = NO_STORE
    return session_out(user_id, email, principal.tenant_id, role)


def _signed_in(principal: Principal) -> tuple[uuid.UUID, str, str]:
    """(user id, email, role) of a session principal (`SessionPrincipal` makes only those)."""
    if principal.user_id is None or principal.email is None or principal.role is None:
        raise UnauthorizedError("Sign in first: this route needs the session cookie.")
    return principal.user_id, principal.email, principal.role


def _client(request: Request) -> str:
    return client_ip(request.scope, request.app.state.settings.trusted_proxies)


def _cleared() -> Response:
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    clear_session_cookies(response)
    response.headers["Cache-Control"] = NO_STORE
    return response
