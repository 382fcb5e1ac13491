"""The local observability stack holds together: compose.yaml, the OpenTelemetry Collector
config and Grafana's provisioning refer to each other and to files that exist.

There is no container engine in the test environment, so these are static checks of what
`docker compose up` relies on; docs/observability.md walks through running it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML (via uvicorn[standard]) ships no stubs

ROOT = Path(__file__).resolve().parents[2]
OPS = ROOT / "ops"


def _yaml(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


COMPOSE = _yaml(ROOT / "compose.yaml")
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
COLLECTOR = _yaml(OPS / "otel-collector.yaml")


def _mounts(service: str) -> dict[str, str]:
    """Container path -> host path of the service's bind mounts (named volumes left out)."""
    mounts: dict[str, str] = {}
    for volume in SERVICES[service].get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts[target] = source
    return mounts


def test_the_stack_has_every_service() -> None:
    expected = {"postgres", "redis", "otel-collector", "jaeger", "prometheus", "grafana"}
    assert expected <= set(SERVICES)


def test_images_are_pinned() -> None:
    """Every pulled image names an exact version and its digest: never `latest`, never a bare
    major. The service's own image is built from the Dockerfile (`build:`), not pulled."""
    for name, service in SERVICES.items():
        if "build" in service:
            continue
        reference, _, digest = service["image"].partition("@")
        assert digest.startswith("sha256:"), f"{name}: {service['image']} has no digest"
        image, _, tag = reference.rpartition(":")
        assert image, f"{name}: {service['image']} has no tag"
        assert tag != "latest", f"{name}: {service['image']}"
        assert tag.count(".") >= 1, f"{name}: {service['image']} is not an exact version"


def test_bind_mounts_exist() -> None:
    for name in SERVICES:
        for source in _mounts(name).values():
            assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_prometheus_reaches_the_host_and_loads_the_rules() -> None:
    prometheus = SERVICES["prometheus"]
    assert "host.docker.internal:host-gateway" in prometheus["extra_hosts"]
    assert _mounts("prometheus")["/etc/prometheus"] == "./ops/prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    config = _yaml(OPS / "prometheus" / "prometheus.yml")
    targets = [
        target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    ]
    assert targets == ["host.docker.internal:8000", "host.docker.internal:9101"]


def test_grafana_provisioning_points_at_the_mounted_dashboards() -> None:
    mounts = _mounts("grafana")
    assert mounts["/etc/grafana/provisioning"] == "./ops/grafana/provisioning"
    provisioning = OPS / "grafana" / "provisioning"
    providers = _yaml(provisioning / "dashboards" / "dashboards.yaml")["providers"]
    assert [mounts[p["options"]["path"]] for p in providers] == ["./ops/grafana/dashboards"]
    sources = _yaml(provisioning / "datasources" / "datasources.yaml")["datasources"]
    prometheus = next(source for source in sources if source["type"] == "prometheus")
    assert prometheus["isDefault"] is True
    assert prometheus["url"] == "http://prometheus:9090"


def test_collector_pipeline_is_complete() -> None:
    """OTLP over gRPC and HTTP in; memory_limiter first, then batch; Jaeger and debug out."""
    protocols = COLLECTOR["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"].endswith(":4317")
    assert protocols["http"]["endpoint"].endswith(":4318")
    pipeline = COLLECTOR["service"]["pipelines"]["traces"]
    assert pipeline["processors"] == ["memory_limiter", "batch"]
    for kind in ("receivers", "processors", "exporters"):
        assert set(pipeline[kind]) <= set(COLLECTOR[kind]), f"undefined {kind}"
    assert "debug" in pipeline["exporters"]
    backend = COLLECTOR["exporters"]["otlp/jaeger"]["endpoint"]
    assert backend.split(":")[0] in SERVICES
    assert set(COLLECTOR["service"]["extensions"]) <= set(COLLECTOR["extensions"])
    assert _mounts("otel-collector")["/etc/otelcol/config.yaml"] == "./ops/otel-collector.yaml"
    published = [port.split(":")[-1] for port in SERVICES["otel-collector"]["ports"]]
    assert {"4317", "4318"} <= set(published)
