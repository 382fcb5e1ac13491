"""SEC-HEADERS: every response, errors included, carries the security headers."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.http.routes import api_routes
from app.main import create_app
from app.middleware.security_headers import API_CSP
from app.settings import Settings

EXPECTED = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "cache-control": "no-store",
}


@pytest.fixture
def app_with_failing_route(app: FastAPI) -> FastAPI:
    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    return app


def _assert_secure(response: httpx2.Response) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, (response.request.url, name)
    assert "permissions-policy" in response.headers
    assert "server" not in response.headers
    # A route may state its own policy (the docs page), but never a weaker baseline.
    csp = response.headers["content-security-policy"]
    assert csp.startswith("default-src 'none';")
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp


def test_every_registered_route_carries_the_headers(client: TestClient, app: FastAPI) -> None:
    """Walks the app's routes, so a route added later is covered without editing this test."""
    routes = api_routes(app)
    assert len(routes) >= 5
    for route in routes:
        path = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), route.path or "")
        for method in route.methods or ():
            _assert_secure(client.request(method, path, json={}))


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/health/live", 200),
        ("GET", "/health/ready", 200),
        ("GET", "/nope", 404),
        ("DELETE", "/health/live", 405),
        ("GET", "/boom", 500),
        ("GET", "/openapi.json", 200),
    ],
)
def test_security_headers_on_every_response(
    app_with_failing_route: FastAPI, method: str, path: str, status: int
) -> None:
    """Success, 404, 405, and an unhandled 500 all carry the same strict headers."""
    with TestClient(app_with_failing_route, raise_server_exceptions=False) as client:
        response = client.request(method, path)
    assert response.status_code == status
    _assert_secure(response)
    assert response.headers["content-security-policy"] == API_CSP
    assert "strict-transport-security" not in response.headers


def test_hsts_only_in_production(make_settings: Callable[..., Settings]) -> None:
    """Production responses add HSTS; a year, subdomains included."""
    settings = make_settings(
        environment="production",
        secret_key=secrets.token_urlsafe(32),
        support_url="https://help.acme.test/",
        session_signing_keys=f"k1:{secrets.token_urlsafe(32)}",
        clamd_address="tcp://127.0.0.1:3310",
    )
    with TestClient(create_app(settings)) as client:
        response = client.get("/health/live")
    assert response.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"


def test_html_error_page_has_a_nonce_csp_without_unsafe_inline(client: TestClient) -> None:
    """A browser's error page gets its own strict CSP: a per-response nonce, no unsafe-inline."""
    first = client.get("/nope", headers={"Accept": "text/html"})
    second = client.get("/nope", headers={"Accept": "text/html"})
    csp = first.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "'nonce-" in csp
    assert "unsafe-inline" not in csp
    assert csp != second.headers["content-security-policy"]
    nonce = csp.split("'nonce-")[1].split("'")[0]
    assert f'nonce="{nonce}"' in first.text


def test_api_docs_get_their_own_nonce_policy(client: TestClient) -> None:
    """/docs nonces its scripts instead of loosening the API's policy."""
    response = client.get("/docs")
    csp = response.headers["content-security-policy"]
    nonce = csp.split("'nonce-")[1].split("'")[0]
    assert response.text.count(f'<script nonce="{nonce}"') >= 2
    assert "unsafe-inline" not in csp


def test_api_docs_are_off_in_production(make_settings: Callable[..., Settings]) -> None:
    """Production serves neither the docs page nor the OpenAPI document by default."""
    settings = make_settings(
        environment="production",
        secret_key=secrets.token_urlsafe(32),
        support_url="https://help.acme.test/",
        session_signing_keys=f"k1:{secrets.token_urlsafe(32)}",
        clamd_address="tcp://127.0.0.1:3310",
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/docs").status_code == 404
        assert client.get("/openapi.json").status_code == 404
