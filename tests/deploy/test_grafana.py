"""Grafana: the dashboard parses, every panel and query has a datasource, every metric it
queries is exported (or recorded by the rules), the latency panels draw the SLO lines, and the
provisioning files point at the dashboard and the datasource it names."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.deploy.promql import (
    DEPLOY,
    SCRAPE_SERIES,
    exported_series,
    metric_names,
    recorded_series,
)

GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "wedsync.json"
_LABEL_VALUES = re.compile(r"^\s*label_values\((?:(?P<expr>.*),)?\s*(?P<label>\w+)\s*\)\s*$")


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # collapsed rows keep their panels inside


def _queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable."""
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r}", target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            match = _LABEL_VALUES.match(text)
            yield f"variable {variable['name']}", match.group("expr") if match else text


def test_dashboard_is_json_with_a_uid_and_panels(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] and dashboard["title"]
    assert len([p for p in _panels(dashboard) if p["type"] != "row"]) >= 15


def test_panel_ids_are_unique(dashboard: dict[str, Any]) -> None:
    ids = [p["id"] for p in _panels(dashboard)]
    assert len(ids) == len(set(ids))


def test_every_panel_and_query_has_a_datasource(dashboard: dict[str, Any]) -> None:
    for panel in _panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"], panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == panel["datasource"]["uid"], panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_every_queried_metric_is_exported_or_recorded(dashboard: dict[str, Any]) -> None:
    known = exported_series() | recorded_series() | SCRAPE_SERIES
    for where, expr in _queries(dashboard):
        names = metric_names(expr)
        assert names, f"{where}: queries no metric: {expr}"
        assert names <= known, f"{where}: unknown {names - known}"


def test_dashboard_shows_every_stage_and_view(dashboard: dict[str, Any]) -> None:
    queried = set().union(*(metric_names(expr) for _, expr in _queries(dashboard)))
    assert {
        "wedsync_records_consumed_total",  # flow per stage
        "wedsync_records_produced_total",
        "wedsync_cdc_events_produced_total",
        "wedsync_ingest_requests_total",
        "wedsync_sink_results_total",
        "wedsync_inapp_messages_sent_total",
        "wedsync_sink_commit_to_provider_seconds_bucket",  # latency
        "wedsync_end_to_end_latency_seconds_bucket",
        "wedsync_consumer_lag_records",  # lag
        "wedsync_cdc_lag_seconds",
        "wedsync_sink_retries_scheduled_total",  # retries and dead letters
        "wedsync_dead_letters_total",
        "wedsync_sla_integrations",  # integration health
        "wedsync_inapp_connections",
    } <= queried


def test_latency_panels_draw_lines_at_0_1_and_0_5_seconds(dashboard: dict[str, Any]) -> None:
    latency = [
        p
        for p in _panels(dashboard)
        if any("histogram_quantile" in t["expr"] for t in p.get("targets", []))
    ]
    assert {"wedsync_sink_commit_to_provider_seconds_bucket",
            "wedsync_end_to_end_latency_seconds_bucket"} <= set().union(
        *(metric_names(t["expr"]) for p in latency for t in p["targets"])
    )  # fmt: skip
    for panel in latency:
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults["unit"] == "s", panel["title"]
        steps = {s["value"] for s in defaults["thresholds"]["steps"]}
        assert {0.1, 0.5} <= steps, panel["title"]
        assert defaults["custom"]["thresholdsStyle"]["mode"] == "line", panel["title"]


def test_provisioning_loads_this_dashboard_with_its_datasource(dashboard: dict[str, Any]) -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    uids = {d["uid"] for d in datasources["datasources"]}
    used = {p["datasource"]["uid"] for p in _panels(dashboard) if p["type"] != "row"}
    assert used <= uids
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/wedsync.yml").read_text())
    path = providers["providers"][0]["options"]["path"]
    grafana = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["grafana"]
    assert f"./grafana/dashboards:{path}:ro" in grafana["volumes"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
