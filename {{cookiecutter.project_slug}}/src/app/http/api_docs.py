"""Interactive API docs (Swagger UI at `/docs`) under a strict, nonce-based CSP.

The assets come from an installed package, never a CDN, so the docs work offline and the page's
CSP can be `'self'` plus a nonce. The package is fastapi-offline: maintained (swagger-ui-bundle
saw no release since 2023); only its static files are used, the page is FastAPI's own helper.
No ReDoc page: its bundle injects <style> elements without a nonce, so it needs
`style-src 'unsafe-inline'`, which SEC-HEADERS refuses for HTML pages.

FastAPI's stock pages bootstrap with an un-nonced inline script, which the API's global
`default-src 'none'` blanks. Instead of relaxing the policy for everything, each page gets a fresh
nonce per response. Docs are off in production by default.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

ASSETS_PATH = "/docs/assets"
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
_FRAME = "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
# Swagger UI sets styles through the DOM (allowed), never by inline <style> elements.
SWAGGER_CSP = (
    "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'self'; "
    f"img-src 'self' data:; connect-src 'self'; {_FRAME}"
)


def _nonced(page: HTMLResponse, policy: str) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    body = bytes(page.body).decode().replace("<script", f'<script nonce="{nonce}"')
    csp = policy.replace("{nonce}", nonce)
    return HTMLResponse(body, headers={"content-security-policy": csp})


def install_api_docs(app: FastAPI) -> None:
    """Serve `/docs` for the OpenAPI document at `app.openapi_url`, and its assets under
    `/docs/assets`."""
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIR), name="api-docs-assets")
    title = f"{app.title} API"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=str(app.openapi_url),
            title=title,
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon.png",
        )
        return _nonced(page, SWAGGER_CSP)
