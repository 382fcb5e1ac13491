"""Security headers on every HTTP response, error pages and 404s included.

Values follow the OWASP Secure Headers Project and the REST Security Cheat Sheet. A response that
already carries a `Content-Security-Policy` or `Cache-Control` keeps its own: that is how a route
(the HTML error page, the API docs, a cacheable GET) states a different policy.
"""

from __future__ import annotations

from collections.abc import Awaitable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_CSP = "default-src 'none'; frame-ancestors 'none'"
PERMISSIONS_POLICY = (
    "accelerometer=(), autoplay=(), camera=(), display-capture=(), encrypted-media=(), "
    "fullscreen=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), midi=(), "
    "payment=(), picture-in-picture=(), publickey-credentials-get=(), screen-wake-lock=(), "
    "sync-xhr=(), usb=(), xr-spatial-tracking=()"
)
HSTS = "max-age=31536000; includeSubDomains"

_ALWAYS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy", PERMISSIONS_POLICY.encode()),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"x-permitted-cross-domain-policies", b"none"),
)
_DEFAULTS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", API_CSP.encode()),
    (b"cache-control", b"no-store"),
)
# Headers that announce software versions to an attacker.
_REMOVED = frozenset({b"server", b"x-powered-by"})


class SecurityHeadersMiddleware:
    """Adds the security headers in the `send` wrapper; HSTS only when `hsts` is on (production)."""

    def __init__(self, app: ASGIApp, hsts: bool) -> None:
        self.app = app
        self.always = _ALWAYS + (((b"strict-transport-security", HSTS.encode()),) if hsts else ())

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Nothing to do once the app has answered, so no coroutine of this layer's own: the app's
        # awaitable is handed back (app.middleware.headers says why the wrappers are plain too).
        if scope["type"] != "http":
            return self.app(scope, receive, send)

        def send_with_headers(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                message["headers"] = self._secure(message.get("headers", []))
            return send(message)

        return self.app(scope, receive, send_with_headers)

    def _secure(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        # Names compared as they are: ASGI has every response header name in lower case.
        present = {pair[0] for pair in headers}
        if present.isdisjoint(_REMOVED):
            kept = list(headers)
        else:
            kept = [pair for pair in headers if pair[0] not in _REMOVED]
        for pair in _DEFAULTS:
            if pair[0] not in present:
                kept.append(pair)
        kept.extend(self.always)
        return kept
