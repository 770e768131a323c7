"""The sink commands a user runs: `wedsync fake` answers like the provider and honours its
switches; `wedsync dlq list` prints the dead letters with their reasons."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
from connectors.sinks.answer import fatal
from streams.dev.broker import free_port
from streams.kafka.codec import TopicCodecs

from tests.integration.sinks.support import (
    RunningSink,
    ScriptedConnector,
    make_runtime,
    outcomes,
    own_broker,
    produce,
    slack_record,
    wait_until,
)

pytestmark = pytest.mark.integration


def test_wedsync_fake_slack_throttles_then_posts() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.app.cli", "fake", "slack", "--port", str(port),
         "--throttle-next", "1", "--retry-after", "7"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/api/chat.postMessage"
        headers = {"Authorization": "Bearer xoxb-fake-token"}
        body = {"channel": "C1", "text": "hello"}
        wait_until(lambda: _answers(url), timeout=20)
        first = httpx.post(url, json=body, headers=headers)
        second = httpx.post(url, json=body, headers=headers)
        stats = httpx.get(f"http://127.0.0.1:{port}/_fake/stats").json()
    finally:
        proc.terminate()
        proc.wait(10)
    assert (first.status_code, first.headers["retry-after"]) == (429, "7")
    assert second.json()["ok"] is True
    assert stats["counters"]["messages_posted"] == 1


def _answers(url: str) -> bool:
    try:
        httpx.get(url.rsplit("/api", 1)[0] + "/_fake/stats", timeout=1)
    except httpx.TransportError:
        time.sleep(0.1)
        return False
    return True


def test_wedsync_dlq_list_prints_each_dead_letter_with_its_reason(codecs: TopicCodecs) -> None:
    with own_broker() as bootstrap:
        record = slack_record(channel="C-DLQ")
        refused = fatal("slack.msg_too_long", "too long")
        connector = ScriptedConnector(script={record["delivery_id"]: [refused]})
        sink = RunningSink(make_runtime(connector, bootstrap, codecs))
        produce(bootstrap, codecs, [record])
        wait_until(lambda: outcomes(bootstrap, codecs, record["delivery_id"]))
        sink.stop()
        out = subprocess.run(
            [sys.executable, "-m", "streams.app.cli", "dlq", "list", "slack",
             "--event-id", record["event_id"]],
            env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap},
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
    assert "slack.msg_too_long" in out and "target=slack:C-DLQ" in out
    assert out.strip().endswith("1 dead letters")
