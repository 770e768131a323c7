"""Metric labels come from closed sets: a label that could carry an event, couple, user,
integration or URL (an unbounded set) fails here, and the SLA agent's series do not grow with
the number of integrations."""

from __future__ import annotations

from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase
from streams import metrics
from streams.logic.sla import SlaWindows

BOUNDED = {
    "stage", "reason", "source", "outcome", "topic", "op", "destination", "verdict",
    "error_class", "kind", "result", "code", "state", "window", "quantile", "alert", "consumer",
    "partition", "to", "provider", "status",
}  # fmt: skip


def declared() -> dict[str, MetricWrapperBase]:
    return {n: m for n, m in vars(metrics).items() if isinstance(m, MetricWrapperBase)}


def test_every_label_is_from_a_closed_set() -> None:
    unbounded = {
        (name, label)
        for name, metric in declared().items()
        for label in metric._labelnames
        if label not in BOUNDED
    }
    assert unbounded == set()


def test_the_check_catches_a_per_user_label() -> None:
    from prometheus_client import CollectorRegistry, Counter

    bad = Counter("x_total", "x", ["user_id"], registry=CollectorRegistry())
    assert [label for label in bad._labelnames if label not in BOUNDED] == ["user_id"]


def test_names_follow_the_prometheus_conventions() -> None:
    for name, metric in declared().items():
        full = metric._name
        assert full.startswith("wedsync_"), name
        if metric._type == "counter":
            assert not full.endswith("_total"), name  # the client adds _total
        if metric._type == "histogram":
            assert full.endswith("_seconds"), name


def _series(prefix: str) -> int:
    metrics.export("sla")  # what `wedsync sla` exports
    return sum(len(m.samples) for m in REGISTRY.collect() if m.name.startswith(prefix))


def test_sla_series_do_not_grow_with_integrations() -> None:
    from streams.sla.process import SlaAgent

    def run(n: int) -> int:
        w = SlaWindows()
        for i in range(n):
            for j in range(4):  # every kind has successes and failures, with few or many
                w.add({"outcome": ["delivered", "retry_scheduled"][j % 2],
                       "destination": ["crm", "webhook", "slack"][i % 3],
                       "integration_id": f"integration-{i}", "completed_at_ms": 1_000_000,
                       "source_ts_ms": 999_000})  # fmt: skip
        healths, _ = w.evaluate(1_000.5)
        agent = SlaAgent.__new__(SlaAgent)
        agent.windows = w
        agent.settings = type("S", (), {"windows": w.windows})()  # type: ignore[assignment]
        agent._gauges(healths, 1_000.5)
        return _series("wedsync_sla_")

    few = run(6)
    many = run(600)
    assert many == few
