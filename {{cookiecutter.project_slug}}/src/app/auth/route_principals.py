"""What authenticates each /api/ route, declared where the route is.

A route declares its principal through its dependencies: `CurrentPrincipal` (an API key or the
session cookie), `SessionPrincipal` (the session cookie only), or one of the markers below for
routes that authenticate otherwise. tests/fitness/test_principals.py fails for an /api/ route
that declares none, so a new route cannot forget it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Depends
from fastapi.dependencies.models import Dependant

from app.auth.principal import authenticate, authenticate_session


def public_route() -> None:
    """Marker: no principal, on purpose (signing in is how a caller gets one)."""


def refresh_cookie_route() -> None:
    """Marker: authenticated by the refresh cookie, which the route checks itself."""


PUBLIC = Depends(public_route)
REFRESH_COOKIE_AUTH = Depends(refresh_cookie_route)

# Each declaration, and whether it authenticates with a cookie (then CSRF-checked on unsafe
# methods: SEC-CSRF).
PRINCIPAL_KINDS: dict[Callable[..., Any], tuple[str, bool]] = {
    authenticate: ("api_key_or_session", True),
    authenticate_session: ("session", True),
    refresh_cookie_route: ("refresh_cookie", True),
    public_route: ("public", False),
}


def declared_principals(dependant: Dependant) -> set[str]:
    """The principal kinds `dependant` (a route's, with its sub-dependencies) declares."""
    kinds: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        if current.call in PRINCIPAL_KINDS:
            kinds.add(PRINCIPAL_KINDS[current.call][0])
        pending.extend(current.dependencies)
    return kinds


def uses_cookies(kinds: set[str]) -> bool:
    by_name = dict(PRINCIPAL_KINDS.values())
    return any(by_name[kind] for kind in kinds)
