"""`Location` values that never come from the request's `Host` header.

Starlette's `request.url_for` builds an absolute URL on whatever `Host` the client sent, so a
hostile Host (or a cache keyed without it) puts an attacker's origin into a `Location` that a
client follows or a replay stores. The reference is relative (RFC 9110 section 10.2.2 allows it),
or absolute on PUBLIC_BASE_URL when the operator configured one.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request


def location_for(request: Request, route_name: str, **path_params: Any) -> str:
    """The URL of route `route_name`: on PUBLIC_BASE_URL if set, else a path from the root."""
    path = request.app.url_path_for(route_name, **path_params)
    base = request.app.state.settings.public_base_url
    if base is not None:
        return f"{str(base).rstrip('/')}{path}"
    return f"{request.scope.get('root_path', '')}{path}"
