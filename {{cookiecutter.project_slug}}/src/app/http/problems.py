"""Rendering of RFC 9457 problem details, as JSON for API clients and as HTML for browsers.

Both carry the correlation id and the support link, so a person can quote one id to support and an
operator can find every log line of that request.
"""

from __future__ import annotations

import html
import json
import secrets
from http import HTTPStatus
from typing import Any

from starlette.responses import Response
from starlette.types import Scope

from app.middleware.correlation import current_request_id

PROBLEM_JSON = "application/problem+json"
_JSON_TYPES = ("application/json", "application/problem+json")


def _accept_quality(accept: str) -> dict[str, float]:
    qualities: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        if media:
            qualities[media.lower()] = quality
    return qualities


def wants_html(scope: Scope) -> bool:
    """True when the client names `text/html` explicitly and prefers it over JSON (a browser)."""
    accept = next((v for k, v in scope.get("headers", []) if k == b"accept"), b"").decode("latin-1")
    qualities = _accept_quality(accept)
    html_quality = qualities.get("text/html", 0.0)
    return html_quality > 0 and html_quality >= max(qualities.get(t, 0.0) for t in _JSON_TYPES)


def problem_body(
    status: int,
    title: str,
    detail: str,
    support_url: str,
    problem_type: str = "about:blank",
    instance: str | None = None,
    **extensions: Any,
) -> dict[str, Any]:
    """The problem object; `instance` defaults to a URN naming this occurrence."""
    correlation_id = current_request_id() or "none"
    return {
        "type": problem_type,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance or f"urn:request:{correlation_id}",
        "correlation_id": correlation_id,
        "support": support_url,
        **extensions,
    }


def render_problem(
    scope: Scope,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> Response:
    """A response for `body`: an HTML page for browsers, problem+json for everyone else."""
    if wants_html(scope):
        return _html_page(body, headers or {})
    return Response(
        json.dumps(body, separators=(",", ":")).encode(),
        status_code=body["status"],
        media_type=PROBLEM_JSON,
        headers=headers,
    )


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{status} {title}</title>
<style nonce="{nonce}">body{{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;
padding:0 1rem;color:#1f2328}}code{{background:#f6f8fa;padding:.1rem .3rem}}</style>
</head><body>
<h1>{status} {title}</h1>
<p>{detail}</p>
<p>If you contact support, quote this reference: <code>{correlation_id}</code></p>
<p><a href="{support}">Get help</a></p>
</body></html>
"""


def _html_page(body: dict[str, Any], headers: dict[str, str]) -> Response:
    nonce = secrets.token_urlsafe(16)
    page = _PAGE.format(
        nonce=nonce,
        status=body["status"],
        title=html.escape(str(body["title"])),
        detail=html.escape(str(body["detail"])),
        correlation_id=html.escape(str(body["correlation_id"])),
        support=html.escape(str(body["support"]), quote=True),
    )
    csp = (
        f"default-src 'none'; style-src 'nonce-{nonce}'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    )
    return Response(
        page,
        status_code=body["status"],
        media_type="text/html; charset=utf-8",
        headers={**headers, "content-security-policy": csp},
    )


def status_title(status: int) -> str:
    """The reason phrase, which RFC 9457 asks for as the title of an `about:blank` problem."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
