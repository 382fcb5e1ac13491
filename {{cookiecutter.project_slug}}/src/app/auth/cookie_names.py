"""The names of the browser-session cookies, shared by the session code and the CSRF check.

`__Host-` cookies are Secure, host-only and `Path=/` by the browser's own rule, so a sibling
subdomain or a plain-HTTP page cannot set or shadow them. The refresh cookie is scoped to the auth
path, which `__Host-` forbids, so it takes `__Secure-` (Secure required) instead.
"""

from __future__ import annotations

ACCESS_COOKIE = "__Host-access"
DEVICE_COOKIE = "__Host-device"
REFRESH_COOKIE = "__Secure-refresh"
AUTH_PATH = "/api/v1/auth"

# A request carrying any of these is cookie-authenticated (ambient credentials): CSRF-checked.
SESSION_COOKIES = frozenset({ACCESS_COOKIE, REFRESH_COOKIE, DEVICE_COOKIE})
