"""Interactive API docs (Swagger UI) under a strict, nonce-based CSP of their own.

FastAPI's stock page bootstraps with an un-nonced inline script, which the API's global
`default-src 'none'` blanks. Instead of relaxing the policy for everything, this page gets a fresh
nonce per response and allows only the Swagger UI bundle. Docs are off in production by default.
"""

from __future__ import annotations

import secrets

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

_ASSETS = "https://cdn.jsdelivr.net"


def install_api_docs(app: FastAPI) -> None:
    """Serve `/docs` for the OpenAPI schema at `app.openapi_url`."""

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        page = get_swagger_ui_html(openapi_url=str(app.openapi_url), title=f"{app.title} API")
        body = bytes(page.body).decode().replace("<script", f'<script nonce="{nonce}"')
        csp = (
            f"default-src 'none'; script-src 'nonce-{nonce}' 'strict-dynamic'; "
            f"style-src {_ASSETS}; img-src 'self' data: https://fastapi.tiangolo.com; "
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
        return HTMLResponse(body, headers={"content-security-policy": csp})
