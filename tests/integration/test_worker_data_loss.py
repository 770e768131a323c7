"""The cluster loses the data a running worker's tables were built from (its topics deleted
and created again, as an embedded broker restarted empty would have them): the worker stops
by itself with a message saying what happened and what to do, and exit status 3, never a
traceback loop or a silent stall (its routing child restarting forever on a missing
changelog, as before).

On Apache Kafka (a cluster of the test's own, since topics are deleted): Tansu reports no
topic ids and creates topics on demand, so the watch cannot see a loss there (README, Known
limits)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from streams import topics
from streams.app.worker import DATA_LOST_EXIT
from streams.dev.broker import free_port
from streams.dev.cdc_like import produce_changes
from streams.dev.kraft import KafkaCluster
from streams.kafka.admin import create_topics
from streams.kafka.codec import TopicCodecs

from tests.integration.agents_support import (
    state_changes,
    wait_for_wedding_state,
    wedding_rows,
)

pytestmark = pytest.mark.integration


def _worker(bootstrap: str, app_id: str, log: Path, metrics_port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "WEDSYNC_APP_ID": app_id,
           "WEDSYNC_WEB_PORT": str(free_port()), "WEDSYNC_METRICS_PORT": str(metrics_port),
           "WEDSYNC_LOG_LEVEL": "warn"}  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "streams.app.cli", "worker"], env=env,
        stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def _checks_ok(metrics_port: int) -> float:
    """The worker's count of data checks that found everything (its /metrics)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return 0.0
    found = re.search(r'^wedsync_kafka_data_checks_total\{result="ok"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def _wait_checks(metrics_port: int, more: int, timeout: float = 60) -> None:
    """Until the worker's data watch has checked `more` times from now (it then holds the
    end offsets of what was written before)."""
    target = _checks_ok(metrics_port) + more
    deadline = time.monotonic() + timeout
    while _checks_ok(metrics_port) < target:
        assert time.monotonic() < deadline, "the worker's data watch does not run"
        time.sleep(0.2)


def _wait_leaders(admin: AdminClient, timeout: float = 60) -> None:
    """Until every partition of the inputs has a leader (a fresh node takes seconds)."""
    wanted = (topics.INGEST_CDC.name, topics.INGEST_STATE.name)
    deadline = time.monotonic() + timeout
    while True:
        meta = admin.list_topics(timeout=5).topics
        if all(t in meta and all(p.leader >= 0 for p in meta[t].partitions.values())
               for t in wanted):  # fmt: skip
            return
        assert time.monotonic() < deadline, "no leaders for the input topics"
        time.sleep(0.2)


def _wait_gone(admin: AdminClient, names: list[str]) -> None:
    deadline = time.monotonic() + 30
    while set(names) & set(admin.list_topics(timeout=5).topics):
        assert time.monotonic() < deadline, f"{names} still listed"
        time.sleep(0.2)


def _wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


def test_a_worker_whose_broker_lost_its_data_stops_saying_so(
    codecs: TopicCodecs, unique_id: str, tmp_path: Path
) -> None:
    app_id = f"wedsync-loss-{unique_id}"
    prefix = f"{app_id}-"
    log = tmp_path / "worker.log"
    cluster = KafkaCluster(nodes=1)
    bootstrap = cluster.start()
    create_topics(bootstrap)
    _wait_leaders(AdminClient({"bootstrap.servers": bootstrap}))
    port = free_port()
    worker = _worker(bootstrap, app_id, log, port)
    try:
        produce_changes(bootstrap, codecs, state_changes(wedding_rows(f"{prefix}w", prefix)))
        wait_for_wedding_state(bootstrap, app_id, prefix)
        _wait_checks(port, 2)
        lost = [topics.INGEST_STATE.name, topics.app_topics(app_id).state_rows_changelog.name]
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for future in admin.delete_topics(lost, operation_timeout=30).values():
            future.result(timeout=60)
        _wait_gone(admin, lost)
        create_topics(bootstrap)  # as every process does at start: empty again, new ids
        code = _wait_exit(worker, 90)
        text = log.read_text(errors="replace")
        assert code == DATA_LOST_EXIT, f"worker exit {code}; log tail: {text[-2000:]}"
        assert "no longer has the changelog" in text
        assert "pg_drop_replication_slot" in text  # and what to do about the routing state
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        cluster.stop()
