"""CSRF: a write carrying the browser's ambient credentials must come from an allowed origin.

A request is checked when its method is unsafe (anything but GET, HEAD, OPTIONS, TRACE) and it is
cookie-authenticated: it carries a session cookie (`SESSION_COOKIES`) and no `Authorization`
header. An API key travels only in `Authorization`, which a browser never adds on its own, so
API-key requests are not affected; a request that has both is authenticated by the header alone
(app.auth.principal). Unsafe requests under the auth path (login, refresh, logout) are checked
even without cookies: a cross-site form must not log the reader in as the attacker (login CSRF).

The rule, Origin first (OWASP CSRF Prevention Cheat Sheet, "Verifying Origin with standard
headers" and "Fetch Metadata"):

- `Origin` is the service's own origin (PUBLIC_BASE_URL, else the request's scheme and Host) or
  one of ALLOWED_ORIGINS: passes. Any other value, `null` included: 403, whatever
  `Sec-Fetch-Site` says.
- no `Origin`: passes only with `Sec-Fetch-Site: same-origin`, or with no fetch metadata at all.
  Browsers send `Origin` on every unsafe request since 2020 and Fetch Metadata since 2023; a
  request with neither comes from a program (curl, a server), which holds no victim's cookies.
  Older browsers that send neither are covered by the cookies' `SameSite` (docs/security.md).

The check reads request headers only and answers before the route, its dependencies (the
idempotency record) and the body are touched: a refused request writes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from app.auth.cookie_names import AUTH_PATH, SESSION_COOKIES
from app.http.errors import ForbiddenError, domain_problem
from app.middleware.csrf_settings import url_origin
from app.observability.logging import get_logger

log = get_logger("app.csrf")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
WHY = (
    "a cookie-authenticated POST, PUT, PATCH or DELETE must come from this service's origin or "
    "one of ALLOWED_ORIGINS."
)
FOREIGN_ORIGIN = f"The request's Origin is not allowed: {WHY}"
NULL_ORIGIN = f"The request's Origin is null (a sandboxed frame, a file or a redirect): {WHY}"
NOT_SAME_ORIGIN = f"The request has no Origin and its Sec-Fetch-Site is not same-origin: {WHY}"


class CrossOriginRequestError(ForbiddenError):
    slug = "cross-origin-request"
    title = "Cross-origin request refused"


def _is_auth_path(path: str) -> bool:
    return path == AUTH_PATH or path.startswith(f"{AUTH_PATH}/")


def _has_session_cookie(cookie_headers: list[bytes]) -> bool:
    cookies = cookie_parser("; ".join(value.decode("latin-1") for value in cookie_headers))
    return not SESSION_COOKIES.isdisjoint(cookies)


class CsrfMiddleware:
    """403 problem for a cookie-authenticated unsafe request from an origin not allowed."""

    def __init__(
        self,
        app: ASGIApp,
        allowed_origins: Iterable[str],
        public_base_url: str | None,
        support_url: str,
    ) -> None:
        self.app = app
        self.public_origin = url_origin(public_base_url) if public_base_url else None
        allowed = {*allowed_origins, *filter(None, [self.public_origin])}
        self.allowed_origins = frozenset(origin.encode("latin-1") for origin in allowed)
        self.support_url = support_url

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            return self.app(scope, receive, send)
        refusal = self.refusal(scope)
        if refusal is None:
            return self.app(scope, receive, send)
        log.warning("csrf_refused", path=scope["path"], method=scope["method"], reason=refusal)
        error = CrossOriginRequestError(refusal)
        return domain_problem(scope, error, self.support_url)(scope, receive, send)

    def refusal(self, scope: Scope) -> str | None:
        """Why this unsafe request is refused, or None when it passes."""
        origins: list[bytes] = []
        cookies: list[bytes] = []
        fetch_site, host, authorized = None, b"", False
        for name, value in scope["headers"]:
            if name == b"origin":
                origins.append(value)
            elif name == b"cookie":
                cookies.append(value)
            elif name == b"sec-fetch-site":
                fetch_site = value
            elif name == b"host":
                host = value
            elif name == b"authorization":
                authorized = True
        checked = _is_auth_path(scope["path"]) or (not authorized and _has_session_cookie(cookies))
        if not checked:
            return None
        if origins:
            # Two Origin fields never come from a browser: each must pass.
            for origin in origins:
                if not self._allowed(origin, scope["scheme"], host):
                    return NULL_ORIGIN if origin == b"null" else FOREIGN_ORIGIN
            return None
        if fetch_site is None or fetch_site == b"same-origin":
            return None
        return NOT_SAME_ORIGIN

    def _allowed(self, origin: bytes, scheme: str, host: bytes) -> bool:
        if origin in self.allowed_origins:
            return True
        if self.public_origin is not None or not host:
            return False
        # No PUBLIC_BASE_URL: the origin this request was sent to, by its scheme and Host. A
        # forged Host cannot carry the victim's cookies: they are host-only (`__Host-`).
        own = url_origin(f"{scheme}://{host.decode('latin-1')}")
        return own is not None and origin.decode("latin-1") == own
