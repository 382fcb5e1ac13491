"""API-CONTRACTS for people: the OpenAPI document says how to authenticate (Swagger UI's
Authorize works), the docs pages load their assets from the service itself under a nonce CSP,
and `/` answers a person with a page of links."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from app.auth.route_principals import declared_principals
from app.dev.services import ServiceUrls
from app.http.routes import api_routes
from app.main import create_app
from app.settings import Settings
from app.tenants.service import NewTenant
from tests.processes import PROJECT_ROOT, env_for, free_port, wait_for_port

_METHODS = {"get", "put", "post", "delete", "patch"}


def _document() -> dict[str, Any]:
    return create_app(Settings(environment="test")).openapi()


def _public_operations(app: FastAPI) -> set[tuple[str, str]]:
    public = set()
    for context in api_routes(app):
        route = context.original_route
        assert isinstance(route, APIRoute)
        if declared_principals(route.dependant) == {"public"}:
            methods = {method.lower() for method in context.methods or ()}
            public |= {(str(context.path), method) for method in methods & _METHODS}
    return public


def test_every_protected_api_operation_declares_its_security() -> None:
    """Each /api/ operation names the schemes it accepts, all of them defined; only the routes
    declared public (signing in) have none."""
    app = create_app(Settings(environment="test"))
    document = app.openapi()
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKey"] == schemes["ApiKey"] | {"type": "http", "scheme": "bearer"}
    assert (schemes["SessionCookie"]["in"], schemes["SessionCookie"]["name"]) == (
        "cookie",
        "__Host-access",
    )
    unsecured = set()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if not path.startswith("/api/") or method not in _METHODS:
                continue
            if "security" not in operation:
                unsecured.add((path, method))
                continue
            for requirement in operation["security"]:
                assert set(requirement) <= set(schemes), (path, method)
    assert unsecured == _public_operations(app)
    assert ("/api/v1/auth/login", "post") in unsecured
    notes = document["paths"]["/api/v1/notes"]["get"]["security"]
    assert {"ApiKey": []} in notes
    assert {"SessionCookie": []} in notes


def _swagger_ui_headers(scheme: dict[str, Any], credential: str) -> dict[str, str]:
    """What Swagger UI sends for an authorized http-bearer scheme (its `Authorize` dialog)."""
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    return {"Authorization": f"Bearer {credential}"}


def test_authorize_with_a_key_makes_try_it_out_on_the_notes_list_succeed(
    client: TestClient, new_tenant: Callable[[], NewTenant]
) -> None:
    """The scheme GET /api/v1/notes declares, filled with a tenant's key as Swagger UI fills it,
    gets 200 (without it: 401)."""
    document = client.get("/openapi.json").json()
    (name,) = [n for r in document["paths"]["/api/v1/notes"]["get"]["security"] for n in r][:1]
    headers = _swagger_ui_headers(
        document["components"]["securitySchemes"][name], new_tenant().api_key
    )
    assert client.get("/api/v1/notes").status_code == 401
    assert client.get("/api/v1/notes", headers=headers).status_code == 200


def test_the_docs_page_loads_only_its_own_nonced_assets(client: TestClient) -> None:
    """No CDN: every script and stylesheet is under /docs/assets (served here, 200) and every
    script carries the nonce that the page's CSP allows."""
    response = client.get("/docs")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    (nonce,) = re.findall(r"'nonce-([^']+)'", csp)
    assert "https:" not in csp
    assert "cdn" not in response.text
    sources = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    assets = [s for s in sources if s.startswith("/docs/assets/")]
    assert assets
    assert all(s.startswith("/") for s in sources), sources
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    scripts = re.findall(r"<script([^>]*)>", response.text)
    assert scripts
    assert all(f'nonce="{nonce}"' in script for script in scripts)


def test_root_answers_a_person_with_links_under_a_strict_csp(client: TestClient) -> None:
    """`/` in a browser: an HTML page linking the docs and readiness; only its nonce'd style
    is allowed."""
    response = client.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    for link in ('href="/docs"', 'href="/health/ready"', 'href="http://127.0.0.1:8001/"'):
        assert link in response.text
    csp = response.headers["content-security-policy"]
    (nonce,) = re.findall(r"'nonce-([^']+)'", csp)
    assert csp.startswith("default-src 'none'; style-src 'nonce-")
    assert f'<style nonce="{nonce}">' in response.text
    assert "<script" not in response.text


def test_root_answers_a_json_only_client_with_links(client: TestClient) -> None:
    """A client that accepts JSON only gets the links as JSON."""
    response = client.get("/", headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.json()["links"]["API docs (Swagger UI)"] == "/docs"


@pytest.fixture(scope="module")
def served(service_urls: ServiceUrls) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port)],
        env=env_for(service_urls),
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)


def test_swagger_ui_renders_in_a_headless_browser_from_local_assets(served: str) -> None:
    """Chromium, with every host but the service's unreachable, renders Swagger UI (its
    operations and the Authorize button): the bundle ran under the page's CSP."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium on this machine (Debian: apt-get install chromium)")
    assert httpx2.get(f"{served}/docs", timeout=10).status_code == 200
    dom = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            # Only the service resolves: a CDN fetch would fail and leave the page blank.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=15000",
            "--dump-dom",
            f"{served}/docs",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "authorize" in dom.lower(), dom[:2000]
    assert "/api/v1/notes" in dom
