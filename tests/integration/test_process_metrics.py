"""Every process serves Prometheus metrics and a health check on WEDSYNC_METRICS_PORT, the
gateways too (their public ports serve their clients, never /metrics), and exports only the
metrics of its own role."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from streams.dev.broker import free_port

from tests.integration.cdc_support import PlatformDb
from tests.integration.inapp.support import FAST, wait_ready

pytestmark = pytest.mark.integration


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


@contextmanager
def process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-m", "streams.app.cli", *args],
                            env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def scrape(port: int, wanted: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    body = ""
    while time.monotonic() < deadline:
        try:
            status, body = get(f"http://127.0.0.1:{port}/metrics")
            if status == 200 and wanted in body:
                return body
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{wanted} never on :{port}/metrics; last body: {body[:500]}")


def healthy(port: int) -> None:
    wait_ready(f"http://127.0.0.1:{port}/healthz", timeout=60)


def test_a_sink_process_serves_its_metrics(kafka_bootstrap: str) -> None:
    port = free_port()
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "WEDSYNC_METRICS_PORT": str(port)}
    with process(["sink", "webhook", "--dev-credentials"], env):
        scrape(port, "wedsync_sink_in_flight")
        healthy(port)


def families(body: str) -> set[str]:
    return {line.split()[2] for line in body.splitlines() if line.startswith("# TYPE wedsync_")}


def test_a_process_exports_only_its_own_metrics(kafka_bootstrap: str) -> None:
    port = free_port()
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "WEDSYNC_METRICS_PORT": str(port)}
    with process(["sink", "webhook", "--dev-credentials"], env):
        body = scrape(port, "wedsync_sink_in_flight")
    assert families(body), body[:500]
    assert not {f for f in families(body) if not f.startswith(("wedsync_sink_", "wedsync_dead_"))}


def test_the_ingest_gateway_serves_its_metrics_apart_from_its_clients(
    kafka_bootstrap: str,
) -> None:
    port, public = free_port(), free_port()
    config = {"host": "127.0.0.1", "port": public,
              "sources": {"crm": {"method": "bearer", "tokens": ["t" * 32]}}}  # fmt: skip
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "WEDSYNC_METRICS_PORT": str(port),
           "WEDSYNC_INGEST_CONFIG": json.dumps(config)}  # fmt: skip
    with process(["ingest"], env):
        body = scrape(port, "# TYPE wedsync_ingest_requests")
        healthy(port)
        wait_ready(f"http://127.0.0.1:{public}/healthz", timeout=60)
        assert get(f"http://127.0.0.1:{public}/metrics")[0] == 404
    assert not {f for f in families(body) if f.startswith(("wedsync_sink_", "wedsync_inapp_"))}


def test_the_inapp_gateway_serves_its_metrics_apart_from_its_clients(
    kafka_bootstrap: str,
) -> None:
    port, public = free_port(), free_port()
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "WEDSYNC_METRICS_PORT": str(port),
           "WEDSYNC_INAPP_PORT": str(public),
           **{f"WEDSYNC_INAPP_{k.upper()}": str(v) for k, v in FAST.items()}}  # fmt: skip
    with process(["inapp"], env):
        body = scrape(port, "# TYPE wedsync_inapp_connections")
        healthy(port)
        assert get(f"http://127.0.0.1:{public}/metrics")[0] == 404
    assert not {f for f in families(body) if f.startswith(("wedsync_sink_", "wedsync_ingest_"))}


def test_the_sla_agent_serves_health_gauges_and_consumer_lag(kafka_bootstrap: str) -> None:
    port = free_port()
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "WEDSYNC_METRICS_PORT": str(port),
           "WEDSYNC_SLA_EVALUATE_EVERY_S": "1"}  # fmt: skip
    with process(["sla"], env):
        body = scrape(port, "wedsync_sla_evaluations_total 1")
        assert "wedsync_sla_integrations" in body
        healthy(port)


def test_the_cdc_source_serves_replication_lag(platform: PlatformDb, kafka_bootstrap: str) -> None:
    postgres = platform.server
    port = free_port()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "WEDSYNC_METRICS_PORT": str(port),
        "WEDSYNC_CDC_HOST": postgres.host, "WEDSYNC_CDC_PORT": str(postgres.port),
        "WEDSYNC_CDC_USER": postgres.user, "WEDSYNC_CDC_DBNAME": platform.dbname,
        "WEDSYNC_CDC_SLOT_NAME": f"slot_{platform.dbname}",
        "WEDSYNC_CDC_PUBLICATION": f"pub_{platform.dbname}",
    }  # fmt: skip
    with process(["cdc"], env):
        body = scrape(port, "wedsync_cdc_lag_bytes")
        assert "wedsync_cdc_lag_seconds" in body
