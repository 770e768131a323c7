"""A sink endpoint starts failing: its health turns failing and its alert fires within one
window, both flip back after it recovers, and a real Prometheus server scraping the process
sees the alert's expression become true."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer
from connectors.sinks.credentials import MemoryCredentialStore
from streams.background import Background
from streams.dev.broker import free_port
from streams.dev.local import WEBHOOK_SECRET, LocalProviders
from streams.kafka.codec import TopicCodecs
from streams.observe import serve
from streams.settings import REPO_ROOT, Settings
from streams.sla.process import SlaAgent
from streams.sla.settings import SlaSettings
from streams.topics import DELIVER, Destination

from tests.integration.sinks.support import RunningSink, make_runtime, own_broker
from tests.integration.sla.prometheus import PrometheusServer
from tests.integration.sla.support import sla_events

pytestmark = pytest.mark.integration
HOOK = DELIVER[Destination.WEBHOOK]
SHIPPED_RULES = tuple(sorted((REPO_ROOT / "deploy" / "prometheus" / "rules").glob("*.yml")))
WINDOW_S = 4.0  # the shortest window ("1m" in production)
RULES = """
groups:
  - name: wedsync-sla-test
    rules:
      - alert: WedsyncIntegrationErrorRate
        expr: wedsync_sla_alerts_firing{alert="error_rate"} > 0
"""


def webhook_record(n: int) -> dict[str, Any]:
    now = int(time.time() * 1000)
    event = f"evt-{n}-{uuid.uuid4().hex[:6]}"
    return {
        "delivery_id": f"dlv-{event}", "event_id": event, "event_type": "form.response_received",
        "aggregate_id": f"form-{n}", "aggregate_version": n, "source_ts_ms": now,
        "routed_at_ms": now, "recipient_id": "sup-1", "integration_id": "hook-ep-1",
        "attempt": 0, "endpoint_id": "ep-1", "endpoint_url": "",
        "event_name": "form_responses.insert", "body_json": f'{{"n": {n}}}',
    }  # fmt: skip


class Traffic:
    """Ten webhook deliveries a second until stopped."""

    def __init__(self, bootstrap: str, url: str, codecs: TopicCodecs) -> None:
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        self.codec, self.url = codecs[HOOK.deliver], url
        self.n = 0
        self.running = Background(self._run, "traffic")

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.n += 1
            rec = {**webhook_record(self.n), "endpoint_url": self.url}
            self.producer.produce(HOOK.deliver.name, self.codec.encode(rec), b"form")
            self.producer.poll(0)
            stop.wait(0.1)
        self.producer.flush(10)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    codecs = TopicCodecs.from_settings(Settings())
    with own_broker() as bootstrap, LocalProviders() as local:
        receiver = local.fake("webhook")
        store = MemoryCredentialStore(
            {("webhook_endpoint", "ep-1"): {"endpoint_url": "x", "secret_key": WEBHOOK_SECRET}}
        )
        sink = RunningSink(make_runtime(local.connector(Destination.WEBHOOK), bootstrap, codecs,
                                        store, breaker_threshold=1000))  # fmt: skip
        thresholds = tmp_path_factory.mktemp("sla") / "thresholds.toml"
        # the embedded broker's fetch waits make every delivery slow: this test is about errors
        thresholds.write_text('[integrations."hook-ep-1"]\nlatency_p99_ms = 60000\n'
                              "min_requests = 5\n")  # fmt: skip
        agent = SlaAgent(bootstrap, codecs, SlaSettings(
            slot_s=1.0, windows={"1m": WINDOW_S, "5m": 8.0, "1h": 30.0}, evaluate_every_s=0.5,
            thresholds_file=thresholds,
        ))  # fmt: skip
        running = Background(agent.run, "sla")
        port = free_port()
        metrics_server = serve(port)
        prom = PrometheusServer(tmp_path_factory.mktemp("prom"), [f"127.0.0.1:{port}"], RULES,
                                SHIPPED_RULES)  # fmt: skip
        url = f"{local.servers['webhook'].url}/hooks/photo"
        traffic = Traffic(bootstrap, url, codecs)
        try:
            yield {"agent": agent, "receiver": receiver, "prom": prom, "bootstrap": bootstrap,
                   "codecs": codecs}  # fmt: skip
        finally:
            traffic.running.stop()
            prom.stop()
            if metrics_server is not None:
                metrics_server.shutdown()
            running.stop()
            sink.stop()


def state_of(agent: SlaAgent, integration: str = "hook-ep-1") -> str | None:
    h = agent.last_health.get(integration)
    return h.state if h else None


def wait_for(pred: Any, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not pred():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout} s"
        time.sleep(0.1)
    return time.monotonic() - started


def test_failing_endpoint_flips_health_and_alert_and_back(pipeline: dict[str, Any]) -> None:
    agent, receiver, prom = pipeline["agent"], pipeline["receiver"], pipeline["prom"]
    wait_for(lambda: state_of(agent) == "healthy", 30, "healthy under normal traffic")

    receiver.switches.fail_next = 1_000_000  # the endpoint answers 503 from now on
    took = wait_for(lambda: state_of(agent) == "failing", 3 * WINDOW_S, "failing")
    assert took <= WINDOW_S + 2  # within one window, plus evaluation and delivery slack
    assert "1m:error_rate" in agent.last_health["hook-ep-1"].firing
    wait_for(lambda: prom.query('wedsync_sla_alerts_firing{alert="error_rate"} > 0'), 15,
             "Prometheus sees the alert expression true")  # fmt: skip
    wait_for(lambda: "WedsyncIntegrationErrorRate" in prom.firing(), 15, "the alert fires")
    wanted = {"destination": "webhook", "alert": "error_rate"}.items()
    wait_for(lambda: any(wanted <= a["labels"].items()  # deploy/'s rule, evaluated in turn
                         for a in prom.active("WedsyncSlaAlertFiring")),
             15, "the shipped WedsyncSlaAlertFiring rule is active")  # fmt: skip

    receiver.switches.fail_next = 0  # it recovers
    took = wait_for(lambda: state_of(agent) == "healthy", 6 * WINDOW_S, "healthy again")
    assert "1m:error_rate" not in agent.last_health["hook-ep-1"].firing

    kinds = [(e["kind"], e["name"]) for e in sla_events(pipeline["bootstrap"], pipeline["codecs"])
             if e["integration_id"] == "hook-ep-1"]  # fmt: skip
    assert ("state_changed", "failing") in kinds and ("alert_firing", "1m:error_rate") in kinds
    assert kinds.index(("state_changed", "healthy")) > kinds.index(("state_changed", "failing"))


def test_prometheus_reads_the_sink_and_sla_metrics_back(pipeline: dict[str, Any]) -> None:
    prom = pipeline["prom"]
    wait_for(lambda: prom.query('wedsync_sink_results_total{destination="webhook"}'), 15,
             "sink results scraped")  # fmt: skip
    assert prom.query('wedsync_sla_integrations{destination="webhook"}')
    assert prom.query("wedsync_sla_evaluations_total > 0")
