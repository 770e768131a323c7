"""What the deploy tests share: the metric names the processes export, the recording rules'
names, and the metric names a PromQL expression queries.

`exported_series()` reads `streams/metrics.py` (every metric declared there, with the series
each type exposes) plus the metrics the SLA agent and the consumers export (listed here from
their specification until they are declared in `streams/metrics.py`).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client.metrics import MetricWrapperBase
from streams import metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES_DIR = DEPLOY / "prometheus" / "rules"

# name -> type, from the SLA agent's specification (`wedsync sla`) and the consuming processes.
SPECIFIED_METRICS = {
    "wedsync_sla_integrations": "gauge",
    "wedsync_sla_error_ratio": "gauge",
    "wedsync_sla_availability_ratio": "gauge",
    "wedsync_sla_latency_seconds": "gauge",
    "wedsync_sla_reliability_score": "gauge",
    "wedsync_sla_alerts_firing": "gauge",
    "wedsync_sla_state_changes": "counter",
    "wedsync_consumer_lag_records": "gauge",
    "wedsync_cdc_lag_seconds": "gauge",
}
# Series Prometheus itself writes for every target.
SCRAPE_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}


def _series(name: str, kind: str) -> set[str]:
    return {name + suffix for suffix in _SUFFIXES[kind]}


def exported_series() -> set[str]:
    """Every series name the wedsync processes expose (e.g. `wedsync_sink_results_total`,
    `wedsync_sink_commit_to_provider_seconds_bucket`)."""
    names: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                names |= _series(family.name, family.type)
    for name, kind in SPECIFIED_METRICS.items():
        names |= _series(name, kind)
    return names


def load_rule_groups() -> list[dict]:
    groups: list[dict] = []
    for path in sorted(RULES_DIR.glob("*.yml")):
        groups += yaml.safe_load(path.read_text())["groups"]
    return groups


def recorded_series() -> set[str]:
    return {r["record"] for g in load_rule_groups() for r in g["rules"] if "record" in r}


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_TEMPLATE_VARIABLE = re.compile(r"\$\{?\w+\}?")
_IDENTIFIER = re.compile(r"(?<![\w.:$])([A-Za-z_:][\w:]*)(?![\w:])(\s*\()?")
_KEYWORDS = {
    "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
    "group_left", "group_right", "inf", "nan", "atan2",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric (or recorded series) names a PromQL expression selects: identifiers that are
    not functions, aggregations, keywords, label names or values, durations or numbers."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _GROUPING.sub("", text)
    text = _TEMPLATE_VARIABLE.sub("", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if call is None and name.lower() not in _KEYWORDS:
            names.add(name)
    return names
