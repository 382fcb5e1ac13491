"""OBS-METRICS: decisions of the production stack are counted and scraped from GET /metrics,
which production never serves publicly on the API port."""

from __future__ import annotations

import re
import secrets
import signal
import uuid
from collections.abc import Callable

import httpx2
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CONTENT_TYPE_LATEST

from app.dev.services import ServiceUrls
from app.main import create_app
from app.observability.metrics import metrics_port
from app.settings import ConfigError, Settings, load_settings
from app.tenants.service import NewTenant
from tests.notes.test_notes_api import auth
from tests.processes import env_for, failed_start, free_port, start_app, wait_for_port

SUPPORT_URL = "https://help.acme.test/"
PRODUCTION = {
    "secret_key": secrets.token_urlsafe(32),
    "support_url": SUPPORT_URL,
    "session_signing_keys": f"k1:{secrets.token_urlsafe(32)}",
    "clamd_address": "tcp://127.0.0.1:3310",
}
METRICS_TOKEN = "m" * 40


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
        # Two workers start side by side, each importing the app: slow on a busy machine.
        assert wait_for_port(port, process, seconds=90), "serve --workers 2 never listened"
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


def test_production_does_not_serve_metrics_on_the_api_port(
    make_settings: Callable[..., Settings],
) -> None:
    """Production without METRICS_TOKEN: /metrics on the API port is a 404 (METRICS_PORT has it)."""
    settings = make_settings(environment="production", **PRODUCTION)
    with TestClient(create_app(settings)) as client:
        response = client.get("/metrics")
    assert response.status_code == 404
    assert metrics_port(settings) == 9100
    assert "http_requests_total" not in response.text


def test_metrics_token_guards_metrics_on_the_api_port(
    make_settings: Callable[..., Settings],
) -> None:
    """With METRICS_TOKEN, /metrics answers 401 problem+json unless that bearer token is sent."""
    settings = make_settings(environment="production", metrics_token=METRICS_TOKEN, **PRODUCTION)
    with TestClient(create_app(settings)) as client:
        missing = client.get("/metrics")
        wrong = client.get("/metrics", headers={"Authorization": f"Bearer {'x' * 40}"})
        right = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    for refused in (missing, wrong):
        assert refused.status_code == 401
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "http_requests_total" not in refused.text
    assert right.status_code == 200
    assert "# TYPE http_requests_total counter" in right.text


def test_production_serves_summed_metrics_on_metrics_port(service_urls: ServiceUrls) -> None:
    """`serve --workers 2` in production: /metrics is 404 on the API port, and METRICS_PORT
    serves every worker's requests summed."""
    port, metrics_port = free_port(), free_port()
    env = env_for(
        service_urls,
        SECRET_KEY=PRODUCTION["secret_key"],
        SUPPORT_URL=SUPPORT_URL,
        SESSION_SIGNING_KEYS=PRODUCTION["session_signing_keys"],
        CLAMD_ADDRESS=PRODUCTION["clamd_address"],
    )
    env.update(ENVIRONMENT="production", METRICS_PORT=str(metrics_port))
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = start_app(["serve", "--port", str(port), "--workers", "2"], env)
    try:
        assert wait_for_port(port, process, seconds=90), failed_start(process)
        base = f"http://127.0.0.1:{port}"
        for _ in range(20):
            assert httpx2.get(f"{base}/health/live", timeout=5).status_code == 200
        assert httpx2.get(f"{base}/metrics", timeout=5).status_code == 404
        scrape = httpx2.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert _live_requests(scrape) == 20.0


def test_metrics_port_equal_to_the_api_port_stops_serve(service_urls: ServiceUrls) -> None:
    """METRICS_PORT on the API port is refused before anything binds, naming the variable."""
    port = free_port()
    process = start_app(
        ["serve", "--port", str(port)], env_for(service_urls, METRICS_PORT=str(port))
    )
    try:
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()  # had it started serving instead
    assert process.returncode == 2
    assert "METRICS_PORT" in err


@pytest.mark.parametrize(
    "variables",
    [
        {"METRICS_TOKEN": "too-short"},
        {"METRICS_TOKEN": METRICS_TOKEN, "METRICS_PORT": "9100"},
    ],
)
def test_a_weak_or_unusable_metrics_token_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]
) -> None:
    """A short METRICS_TOKEN, or one beside METRICS_PORT (which takes none), is a config error."""
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert set(refused.value.problems) == {"METRICS_TOKEN"}
    assert METRICS_TOKEN not in str(refused.value)
