"""SIGTERM of a sink with many deliveries in flight, then a restart: what the provider
accepted is not sent again, and nothing is lost; a retry held at the stop is made after the
restart; only a call still running at the drain bound is cancelled, and only it is made again.

The email sink runs as a real `wedsync sink email` process against an SMTP server of the
test's own that counts every message it accepts by Message-ID (stable per delivery) and
answers each DATA a second after taking the message: a relay that is slow to say 250 for
mail it already holds. The deliveries share 20 (recipient, supplier) pairs, so the sink
holds 160 records at once, 20 at the relay and the rest waiting their turn in order."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from confluent_kafka import Producer
from connectors.sinks.answer import retry
from streams.dev.broker import free_port
from streams.dev.local import allow_list_env
from streams.kafka.codec import TopicCodecs
from streams.topics import DELIVER, Destination

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

PAIRS = 20  # (recipient, supplier) pairs: deliveries of one pair go out one at a time
N = 160
REPLY_AFTER_S = 1.0
CALL_TIMEOUT_S = 3.0


class SlowRelay:
    """An SMTP server that takes each message, counts it, and answers 250 later."""

    def __init__(self) -> None:
        self.port = free_port()
        self.accepted: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port,
                                      server_hostname="slow-relay.invalid")  # fmt: skip

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        data = raw if isinstance(raw, bytes) else raw.encode()
        message_id = next(
            (line.split(b":", 1)[1].strip().decode() for line in data.splitlines()
             if line.lower().startswith(b"message-id:")), "",
        )  # fmt: skip
        with self._lock:
            self.accepted[message_id] += 1
        await asyncio.sleep(REPLY_AFTER_S)
        return "250 2.0.0 OK: queued"

    def count(self) -> int:
        with self._lock:
            return sum(self.accepted.values())

    def __enter__(self) -> SlowRelay:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


def _records(run: str) -> list[dict[str, Any]]:
    return [
        {"delivery_id": f"dlv-stop-{run}-{n}", "event_id": f"stop-{run}-{n}",
         "event_type": "form.response_received", "aggregate_id": f"supplier-{run}-{n % PAIRS}",
         "aggregate_version": n, "source_ts_ms": 1, "routed_at_ms": 1,
         "recipient_id": f"supplier-{run}-{n % PAIRS}", "integration_id": None, "attempt": 0,
         "to_address": f"v{n % PAIRS}@vendors.example", "to_name": None, "template": "generic",
         "subject": f"{run} {n}", "variables": {"summary": "x"}}
        for n in range(N)
    ]  # fmt: skip


def _produce(bootstrap: str, codecs: TopicCodecs, records: list[dict[str, Any]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    topic = DELIVER[Destination.EMAIL].deliver
    for record in records:
        producer.produce(topic.name, codecs[topic].encode(record), record["aggregate_id"].encode())
    assert producer.flush(30) == 0


def _sink(bootstrap: str, relay: SlowRelay, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "streams.app.cli", "sink", "email", "--dev-credentials"],
            env={
                **os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "WEDSYNC_SINK_CALL_TIMEOUT_S": str(CALL_TIMEOUT_S),
                **allow_list_env(relay.port),
                "WEDSYNC_EMAIL_SMTP_HOST": "127.0.0.1", "WEDSYNC_EMAIL_SMTP_PORT": str(relay.port),
            },
            stdout=subprocess.DEVNULL,
            stderr=out,
        )  # fmt: skip


@pytest.fixture
def bootstrap() -> Iterator[str]:
    with own_broker() as address:
        yield address


def test_sigterm_mid_flight_then_restart_sends_each_email_once(
    bootstrap: str, codecs: TopicCodecs, tmp_path: Path
) -> None:
    records = _records(uuid.uuid4().hex[:6])
    log = tmp_path / "sink.log"
    with SlowRelay() as relay:
        _produce(bootstrap, codecs, records)
        first = _sink(bootstrap, relay, log)
        try:
            wait_until(lambda: relay.count() >= PAIRS, timeout=90, every=0.02)
            stopping = time.monotonic()
            first.send_signal(signal.SIGTERM)
            code = first.wait(60)
            stopped_in = time.monotonic() - stopping
        finally:
            if first.poll() is None:
                first.kill()
        at_stop = relay.count()
        assert at_stop < N, "the batch finished before the stop: nothing was tested"
        second = _sink(bootstrap, relay, log)
        try:
            wait_until(lambda: len(relay.accepted) >= N, timeout=120, every=0.1)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(60)
        accepted = Counter(relay.accepted)
    print(f"email: SIGTERM with {at_stop} accepted of {N}; exit {code} after {stopped_in:.1f} s; "
          f"{sum(accepted.values()) - len(accepted)} accepted twice")  # fmt: skip
    for line in log.read_text().splitlines():
        if "stopped" in line:
            print(line)
    assert code == 0
    assert set(accepted) == {f"<{r['delivery_id']}@wedsync.invalid>" for r in records}
    assert [mid for mid, times in accepted.items() if times > 1] == []


def test_a_retry_held_at_the_stop_is_made_once_after_the_restart(
    bootstrap: str, codecs: TopicCodecs
) -> None:
    connector = ScriptedConnector()
    record = slack_record()
    connector.script[record["delivery_id"]] = [retry("http.503")]
    runtime = make_runtime(connector, bootstrap, codecs, retry_schedule_s=(3.0,))
    first = RunningSink(runtime)
    produce(bootstrap, codecs, [record])
    wait_until(lambda: runtime.held)  # read back from the retry topic, due in 3 s
    first.stop()
    second = RunningSink(make_runtime(connector, bootstrap, codecs, retry_schedule_s=(3.0,)))
    wait_until(lambda: "delivered" in outcomes(bootstrap, codecs, record["delivery_id"]))
    second.stop()
    assert [c.attempt for c in connector.attempts_of(record["delivery_id"])] == [0, 1]


def test_a_call_running_at_the_drain_bound_is_cancelled_and_made_again_after_a_restart(
    bootstrap: str, codecs: TopicCodecs
) -> None:
    connector = ScriptedConnector(delay_s=4.0)  # below the 5 s call timeout
    record = slack_record()
    first = RunningSink(make_runtime(connector, bootstrap, codecs, drain_timeout_s=0.5))
    produce(bootstrap, codecs, [record])
    wait_until(lambda: connector.calls, every=0.01)
    stopping = time.monotonic()
    first.stop()
    stopped_in = time.monotonic() - stopping
    print(f"stopped {stopped_in:.1f} s after the stop with a 4 s call and a 0.5 s drain bound")
    connector.delay_s = 0.0
    second = RunningSink(make_runtime(connector, bootstrap, codecs))
    wait_until(lambda: outcomes(bootstrap, codecs, record["delivery_id"]))
    second.stop()
    assert stopped_in < 3.5, f"the stop took {stopped_in:.1f} s with a 0.5 s drain bound"
    assert outcomes(bootstrap, codecs, record["delivery_id"]) == ["delivered"]
    assert len(connector.attempts_of(record["delivery_id"])) == 2
