"""Decisions of the production stack are counted and scraped from GET /metrics."""

from __future__ import annotations

import re
import signal
import uuid
from collections.abc import Callable

import httpx2
from fastapi.testclient import TestClient
from prometheus_client import CONTENT_TYPE_LATEST

from app.devservices import ServiceUrls
from app.main import create_app
from app.settings import Settings
from app.tenants.service import NewTenant
from tests.notes.test_notes_api import auth
from tests.processes import env_for, free_port, start_app, wait_for_port


def _sample(client: TestClient, name: str, label: str) -> float:
    text = client.get("/metrics").text
    match = re.search(rf'^{name}{{[^}}]*="{label}"}} ([0-9.e+]+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_metrics_are_exposed_in_prometheus_text_format(client: TestClient) -> None:
    """GET /metrics answers the text exposition format, with the security headers."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    assert "# TYPE rate_limit_decisions_total counter" in response.text
    assert response.headers["x-content-type-options"] == "nosniff"


def test_rate_limit_decisions_are_counted(make_settings: Callable[..., Settings]) -> None:
    """Allowed and limited requests each move their counter."""
    with TestClient(create_app(make_settings(rate_limit_per_ip="1/minute"))) as client:
        allowed, limited = (
            _sample(client, "rate_limit_decisions_total", d) for d in ("allowed", "limited")
        )
        client.get("/api/v1/notes/x")
        client.get("/api/v1/notes/x")
        assert _sample(client, "rate_limit_decisions_total", "allowed") == allowed + 1
        assert _sample(client, "rate_limit_decisions_total", "limited") == limited + 1


def test_redis_down_is_counted_as_fail_open(make_settings: Callable[..., Settings]) -> None:
    """Each request served without a rate-limit check is counted."""
    settings = make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(settings)) as client:
        before = _sample(client, "rate_limit_decisions_total", "fail_open")
        client.get("/api/v1/notes/x")
        assert _sample(client, "rate_limit_decisions_total", "fail_open") == before + 1


def test_idempotency_outcomes_are_counted(
    client: TestClient, new_tenant: Callable[[], NewTenant]
) -> None:
    """A first request counts as new, its retry as replayed, a mismatched reuse as key_reused."""
    tenant = new_tenant()
    headers = {**auth(tenant), "Idempotency-Key": f'"{uuid.uuid4()}"'}
    counts = {
        o: _sample(client, "idempotency_requests_total", o)
        for o in ("new", "replayed", "key_reused")
    }
    client.post("/api/v1/notes", json={"title": "a"}, headers=headers)
    client.post("/api/v1/notes", json={"title": "a"}, headers=headers)
    client.post("/api/v1/notes", json={"title": "b"}, headers=headers)
    for outcome in counts:
        assert _sample(client, "idempotency_requests_total", outcome) == counts[outcome] + 1


def test_requests_are_counted_by_route_template_never_by_raw_path(client: TestClient) -> None:
    """RED metrics label the route template; an id in the URL never becomes a label value."""
    note_id = str(uuid.uuid4())
    client.get(f"/api/v1/notes/{note_id}")
    text = client.get("/metrics").text
    assert re.search(
        r'^http_requests_total\{method="GET",route="/api/v1/notes/\{note_id\}",status="401"\} ',
        text,
        re.MULTILINE,
    )
    assert (
        'http_request_duration_seconds_bucket{le="0.5",method="GET",route="/api/v1/notes/{note_id}"}'
        in text
    )
    assert note_id not in text
    assert "http_requests_in_flight " in text
    assert "db_pool_connections_in_use " in text


def test_several_workers_serve_the_sum_of_their_metrics(service_urls: ServiceUrls) -> None:
    """`serve --workers 2`: whichever worker answers /metrics reports every worker's requests."""
    port = free_port()
    env = env_for(service_urls)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # `serve --workers` makes one for its workers
    process = start_app(["serve", "--port", str(port), "--workers", "2"], env)
    try:
        assert wait_for_port(port, process), process.communicate(timeout=5)
        base = f"http://127.0.0.1:{port}"
        for _ in range(40):  # a new connection each: the kernel spreads them over the workers
            assert httpx2.get(f"{base}/health/live", timeout=5).status_code == 200
        counts = {_live_requests(httpx2.get(f"{base}/metrics", timeout=5).text) for _ in range(10)}
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert counts == {40.0}


def _live_requests(exposition: str) -> float:
    pattern = r'^http_requests_total\{method="GET",route="/health/live",status="200"\} (\S+)$'
    match = re.search(pattern, exposition, re.MULTILINE)
    return float(match.group(1)) if match else 0.0
