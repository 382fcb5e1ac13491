"""OBS-METRICS: every metric a dashboard, an alert rule or a rule unit test queries is one the
service actually exports (or a recording rule of ops/prometheus/rules).

The exported names come from the real expositions: the API's GET /metrics after it has served
requests, and the worker exporter's registry (app.worker.metrics, plus its queue-depth collector
reading a real Redis). A renamed metric, a typo in a panel or a histogram queried without its
`_bucket` suffix fails here instead of drawing an empty panel or an alert that can never fire.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML (via uvicorn[standard]) ships no stubs
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.dev.services import ServiceUrls
from app.worker.metrics import QueueDepthCollector
from tests.conftest import TEST_QUEUE
from tests.ops.promql import grafana_query_expr, metric_names

OPS = Path(__file__).resolve().parents[2] / "ops"
DASHBOARDS = sorted((OPS / "grafana" / "dashboards").glob("*.json"))
RULE_FILES = sorted((OPS / "prometheus" / "rules").glob("*.yml"))
RULE_TESTS = sorted((OPS / "prometheus" / "tests").glob("*.yml"))
# Series Prometheus writes itself: `up` per scrape target, ALERTS per pending or firing alert.
SYNTHETIC = frozenset({"up", "ALERTS", "ALERTS_FOR_STATE"})
# prometheus_client's process_* and python_* collectors are absent in multi-process mode (several
# uvicorn workers, the prefork worker pool), so no dashboard or rule may depend on them.
SINGLE_PROCESS_ONLY = ("process_", "python_")
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("", "_count", "_sum"),
}


def exposition_names(text: str) -> set[str]:
    """Series names a scrape of `text` yields, including those of metrics with no sample yet."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return {name for name in names if not name.startswith(SINGLE_PROCESS_ONLY)}


def recording_rules() -> set[str]:
    return {
        rule["record"]
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable of every dashboard."""
    queries: list[tuple[str, str]] = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                query = variable["query"]
                text = query["query"] if isinstance(query, dict) else query
                queries.append((f"{path.name} ${variable['name']}", grafana_query_expr(text)))
        panels: list[dict[str, Any]] = dashboard["panels"]
        for panel in panels + [p for row in panels for p in row.get("panels", [])]:
            for target in panel.get("targets", []):
                where = f"{path.name} panel {panel['title']!r} {target['refId']}"
                queries.append((where, target["expr"]))
    return queries


def rule_queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every rule expression, and every series and expression of the unit
    tests (they must model the metrics the service really exports)."""
    queries: list[tuple[str, str]] = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                queries.append((f"{path.name} {rule.get('alert') or rule['record']}", rule["expr"]))
    for path in RULE_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for series in test.get("input_series", []):
                queries.append((f"{path.name} {test['name']!r}", series["series"]))
            for case in test.get("promql_expr_test", []):
                queries.append((f"{path.name} {test['name']!r}", case["expr"]))
    return queries


@pytest.fixture
def exported(client: TestClient, service_urls: ServiceUrls) -> set[str]:
    """Names in the API's and the worker's expositions, plus recording rules and Prometheus's."""
    assert client.get("/health/live").status_code == 200
    client.get("/api/v1/notes")  # 401: an error, a rate-limit decision, a latency sample
    api = exposition_names(client.get("/metrics").text)
    # The worker serves the process registry plus the broker queue depth (start_exporter).
    queue = CollectorRegistry()
    queue.register(QueueDepthCollector(service_urls.redis_url, TEST_QUEUE))
    worker = exposition_names((generate_latest(REGISTRY) + generate_latest(queue)).decode())
    for name in ("http_requests_total", "http_request_duration_seconds_bucket", "db_pool_size"):
        assert name in api, f"{name} missing from GET /metrics"
    for name in ("task_runs_total", "task_duration_seconds_bucket", "task_queue_depth"):
        assert name in worker, f"{name} missing from the worker's exposition"
    return api | worker | recording_rules() | SYNTHETIC


def _unknown(queries: list[tuple[str, str]], exported: set[str]) -> list[str]:
    return [
        f"{where}: {name}"
        for where, expr in queries
        for name in sorted(metric_names(expr) - exported)
    ]


def test_there_is_something_to_check() -> None:
    """The globs find the dashboards and rules, and each yields queries."""
    assert [path.name for path in DASHBOARDS] == [
        "api-red.json",
        "database-redis-use.json",
        "worker.json",
    ]
    assert len(dashboard_queries()) > 30
    assert len(rule_queries()) > 20
    assert all(metric_names(expr) for _, expr in dashboard_queries() + rule_queries())


def test_dashboards_query_only_exported_metrics(exported: set[str]) -> None:
    """Every metric name in every panel and variable query of ops/grafana/dashboards exists."""
    unknown = _unknown(dashboard_queries(), exported)
    assert not unknown, "dashboards query metrics the service does not export:\n" + "\n".join(
        unknown
    )


def test_rules_query_only_exported_metrics(exported: set[str]) -> None:
    """Every metric name in the alert and recording rules and in their unit tests exists."""
    unknown = _unknown(rule_queries(), exported)
    assert not unknown, "rules query metrics the service does not export:\n" + "\n".join(unknown)


def test_an_unknown_metric_is_caught(exported: set[str]) -> None:
    """The check is not vacuous: a typo, a histogram without `_bucket`, or a process_* metric
    (gone in multi-process mode) is reported."""
    broken = [
        ("typo", 'sum(rate(http_request_total{job="api"}[5m]))'),
        ("histogram base name", "histogram_quantile(0.9, rate(http_request_duration_seconds[5m]))"),
        ("single-process only", 'process_resident_memory_bytes{job="api"}'),
    ]
    assert len(_unknown(broken, exported)) == len(broken)
