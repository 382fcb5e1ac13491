"""OBS-METRICS: the Grafana dashboards in ops/grafana are valid dashboard JSON that Grafana's
provisioning (compose.yaml) loads as written.

Each dashboard validates against tests/ops/grafana-dashboard.schema.json, a compact JSON Schema
of Grafana's dashboard model; the checks below add what a schema cannot say: unique panel ids
and uids, panels that fit the 24-column grid without overlapping, one refId per target, every
`$variable` defined, every panel on the dashboard's datasource variable. That the metrics exist
is tests/ops/test_metric_names.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # jsonschema ships no type information
import pytest

HERE = Path(__file__).resolve().parent
GRAFANA = HERE.parents[1] / "ops" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
SCHEMA = json.loads((HERE / "grafana-dashboard.schema.json").read_text())
# Variables Grafana defines itself.
BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__range", "__range_s", "__interval_ms"}
VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

Dashboard = dict[str, Any]


def _load(path: Path) -> Dashboard:
    dashboard: Dashboard = json.loads(path.read_text())
    return dashboard


def _panels(dashboard: Dashboard) -> list[dict[str, Any]]:
    """Every panel, the ones inside collapsed rows included."""
    top: list[dict[str, Any]] = dashboard["panels"]
    return top + [inner for panel in top for inner in panel.get("panels", [])]


def test_the_three_dashboards_exist() -> None:
    assert [path.name for path in DASHBOARDS] == [
        "api-red.json",
        "database-redis-use.json",
        "worker.json",
    ]


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_dashboard_validates_against_the_schema(path: Path) -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(_load(path))
    ]
    assert not errors, "\n".join(errors)


def test_the_schema_rejects_a_broken_dashboard() -> None:
    """The schema is not vacuous: a panel without gridPos, a target without expr fail."""
    dashboard = _load(DASHBOARDS[0])
    panel = next(p for p in dashboard["panels"] if p["type"] == "timeseries")
    del panel["gridPos"]
    del panel["targets"][0]["expr"]
    errors = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(dashboard))
    assert len(errors) >= 2


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_panel_ids_are_unique_and_panels_do_not_overlap(path: Path) -> None:
    panels = _panels(_load(path))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"
    taken: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, f"{panel['title']!r} is wider than the grid"
        for y in range(grid["y"], grid["y"] + grid["h"]):
            for x in range(grid["x"], grid["x"] + grid["w"]):
                assert (x, y) not in taken, f"{panel['title']!r} overlaps {taken[(x, y)]!r}"
                taken[(x, y)] = panel["title"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_targets_have_expr_and_unique_ref_ids(path: Path) -> None:
    for panel in _panels(_load(path)):
        if panel["type"] == "row":
            continue
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), f"{panel['title']!r}: duplicate refId"
        assert all(target["expr"].strip() for target in panel["targets"]), panel["title"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_panels_use_the_datasource_variable_and_defined_variables(path: Path) -> None:
    """No datasource uid of one Grafana installation is baked in, and no query names a variable
    the dashboard does not define (it would be sent to Prometheus as a literal `$name`)."""
    dashboard = _load(path)
    defined = {variable["name"] for variable in dashboard["templating"]["list"]}
    assert "datasource" in defined
    for panel in _panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        for target in panel["targets"]:
            assert target.get("datasource", DATASOURCE) == DATASOURCE, panel["title"]
            used = {a or b for a, b in VARIABLE.findall(target["expr"])}
            undefined = used - defined - BUILTIN_VARIABLES
            assert not undefined, f"{panel['title']!r} uses undefined {sorted(undefined)}"


def test_dashboard_uids_are_unique() -> None:
    uids = [_load(path)["uid"] for path in DASHBOARDS]
    assert len(uids) == len(set(uids))
