"""Setting and clearing the three session cookies (docs/authentication.md, "Cookies").

Every one is `HttpOnly` (no script reads it, so an XSS cannot carry a token away), `Secure` and
`SameSite=Strict`: the API is called by its own front end with `fetch`, never entered by a
top-level navigation from another site, so Strict costs nothing and stops every cross-site send.
`__Host-` cookies are host-only with `Path=/`; the refresh cookie is scoped to the auth path.
"""

from __future__ import annotations

from datetime import timedelta

from starlette.responses import Response

from app.auth.cookie_names import ACCESS_COOKIE, AUTH_PATH, DEVICE_COOKIE, REFRESH_COOKIE
from app.auth.sessions import IssuedSession

# A device id is no credential alone; it outlives sessions so a device keeps one id. 400 days
# is the longest any browser keeps a cookie (RFC 6265bis section 5.5).
DEVICE_COOKIE_DAYS = 400
_PATHS = {ACCESS_COOKIE: "/", DEVICE_COOKIE: "/", REFRESH_COOKIE: AUTH_PATH}


def _set(response: Response, name: str, value: str, lifetime: timedelta) -> None:
    response.set_cookie(
        name,
        value,
        max_age=int(lifetime.total_seconds()),
        path=_PATHS[name],
        secure=True,
        httponly=True,
        samesite="strict",
    )


def set_session_cookies(
    response: Response, issued: IssuedSession, access: timedelta, refresh: timedelta
) -> None:
    """The access and refresh cookies, and the device cookie when the session made a new one."""
    _set(response, ACCESS_COOKIE, issued.access_token, access)
    _set(response, REFRESH_COOKIE, issued.refresh_token, refresh)
    if issued.device_id is not None:
        _set(response, DEVICE_COOKIE, issued.device_id, timedelta(days=DEVICE_COOKIE_DAYS))


def clear_session_cookies(response: Response) -> None:
    """Expire the access and refresh cookies (the device id stays: it names the device)."""
    for name in (ACCESS_COOKIE, REFRESH_COOKIE):
        response.delete_cookie(
            name, path=_PATHS[name], secure=True, httponly=True, samesite="strict"
        )
