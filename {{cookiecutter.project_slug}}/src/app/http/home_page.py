"""`/`: a small page for a person who opens the service in a browser, links for a JSON client.

The page names where to go next: the API docs (when they are on), readiness, the project's docs
site (`make docs` serves it) and support. Its CSP allows nothing but its own nonce'd style, so it
weakens nothing. A client that accepts JSON and not HTML gets the same links as a JSON object.
"""

from __future__ import annotations

import html
import secrets

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from app.settings import Settings

DOCS_SITE_URL = "http://127.0.0.1:8001/"  # `make docs` (mkdocs serve)
HOME_CSP = (
    "default-src 'none'; style-src 'nonce-{nonce}'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;"
    "line-height:1.5}code{background:#f3f3f3;padding:0 .2rem}"
)


def home_links(settings: Settings) -> dict[str, str]:
    """Where a newcomer goes from `/`: name → URL (relative ones on this service)."""
    links: dict[str, str] = {}
    if settings.docs_enabled:
        links |= {"API docs (Swagger UI)": "/docs", "OpenAPI document": "/openapi.json"}
    links["Readiness"] = "/health/ready"
    if not settings.is_production:
        links["Project docs (run `make docs`)"] = DOCS_SITE_URL
    links["Support"] = str(settings.support_url)
    return links


def _wants_json_only(request: Request) -> bool:
    accept = request.headers.get("accept", "").lower()
    return "json" in accept and "html" not in accept and "*/*" not in accept


def _page(title: str, links: dict[str, str], nonce: str) -> str:
    items = "".join(
        f'<li><a href="{html.escape(url)}">{html.escape(name)}</a></li>'
        for name, url in links.items()
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f'<style nonce="{nonce}">{_STYLE}</style></head><body><h1>{title}</h1>'
        "<p>This is an HTTP API. Clients send <code>Authorization: Bearer &lt;api key&gt;</code>;"
        " <code>create-tenant</code> prints a key.</p>"
        f"<ul>{items}</ul></body></html>"
    )


def install_home_page(app: FastAPI, settings: Settings) -> None:
    """Serve `/` (left out of the OpenAPI document: it is not part of the API)."""
    links = home_links(settings)
    title = html.escape(settings.service_name)

    @app.get("/", include_in_schema=False)
    async def home(request: Request) -> Response:
        if _wants_json_only(request):
            body = {"service": settings.service_name, "links": links}
            return JSONResponse(body, headers={"vary": "Accept"})
        nonce = secrets.token_urlsafe(16)
        csp = HOME_CSP.replace("{nonce}", nonce)
        return HTMLResponse(
            _page(title, links, nonce),
            headers={"content-security-policy": csp, "vary": "Accept"},
        )
