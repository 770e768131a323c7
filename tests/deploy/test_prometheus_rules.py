"""Prometheus: the rules and the config pass promtool (check + the unit tests in
deploy/prometheus/tests), every alert says how bad it is and what to do, every alert family is
unit-tested, and the rules query only metrics the processes export."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.promql import (
    DEPLOY,
    SCRAPE_SERIES,
    exported_series,
    load_rule_groups,
    metric_names,
    recorded_series,
)

PROMETHEUS = DEPLOY / "prometheus"
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
PROCESS_JOBS = {
    "wedsync-cdc", "wedsync-ingest", "wedsync-worker", "wedsync-route", "wedsync-sink",
    "wedsync-inapp", "wedsync-sla",
}  # fmt: skip


def _promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:  # never a skip: `make test` installs it (`make system-deps`)
        pytest.fail("promtool is not installed: run `make system-deps` (Debian package prometheus)")
    return subprocess.run(
        [promtool, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def _alerts() -> list[dict]:
    return [r for g in load_rule_groups() for r in g["rules"] if "alert" in r]


def test_rule_files_pass_promtool_check() -> None:
    result = _promtool("check", "rules", *sorted((PROMETHEUS / "rules").glob("*.yml")))
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_config_passes_promtool_check() -> None:
    result = _promtool("check", "config", PROMETHEUS / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 rule files found" in result.stdout


def test_rule_unit_tests_pass_promtool() -> None:
    tests = sorted((PROMETHEUS / "tests").glob("*.yml"))
    assert tests
    result = _promtool("test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_severity_a_summary_and_what_to_do() -> None:
    for alert in _alerts():
        assert alert["labels"]["severity"] in {"page", "ticket"}, alert["alert"]
        assert alert["annotations"]["summary"].strip(), alert["alert"]
        assert "What to do" in alert["annotations"]["description"], alert["alert"]


def test_every_alert_is_exercised_by_a_promtool_unit_test() -> None:
    tested = set()
    for path in (PROMETHEUS / "tests").glob("*.yml"):
        text = path.read_text()
        tested |= set(re.findall(r"alertname(?:: |=\")(\w+)", text))
    assert {a["alert"] for a in _alerts()} <= tested


def test_both_slis_are_recorded_over_every_burn_rate_window() -> None:
    recorded = recorded_series()
    for sli in ("wedsync_sink_error_ratio", "wedsync_sink_slow_ratio"):
        assert {f"destination:{sli}:rate{w}" for w in WINDOWS} <= recorded


def test_the_burn_rate_alerts_page_and_ticket_for_both_slos() -> None:
    by_name = {a["alert"]: a for a in _alerts()}
    for slo in ("DeliveryError", "DeliveryLatency"):
        assert by_name[f"Wedsync{slo}BudgetFastBurn"]["labels"]["severity"] == "page"
        assert by_name[f"Wedsync{slo}BudgetSlowBurn"]["labels"]["severity"] == "ticket"


def test_rules_query_only_metrics_the_processes_export() -> None:
    known = exported_series() | recorded_series() | SCRAPE_SERIES
    for group in load_rule_groups():
        for rule in group["rules"]:
            unknown = metric_names(rule["expr"]) - known
            assert not unknown, f"{rule.get('alert') or rule.get('record')}: {unknown}"


def test_the_metric_name_parser_skips_functions_labels_and_numbers() -> None:
    expr = (
        'sum by (destination) (rate(wedsync_sink_results_total{outcome=~"a|b"}[5m]))'
        " / on (destination) group_left a:b:rate5m > 1e3 offset 5m"
    )
    assert metric_names(expr) == {"wedsync_sink_results_total", "a:b:rate5m"}


def test_scrape_jobs_cover_every_process_and_name_compose_services() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) >= PROCESS_JOBS
    for name in PROCESS_JOBS:
        for sd in jobs[name]["dns_sd_configs"]:
            for service in sd["names"]:
                assert service in compose, f"{name}: {service} is not a compose service"
                assert str(sd["port"]) in str(compose[service]["healthcheck"]["test"])
