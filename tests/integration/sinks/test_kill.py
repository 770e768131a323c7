"""kill -9 of a sink process mid-batch, then a restart: nothing is lost, an idempotent
destination (customer webhooks, deduplicated on `webhook-id`) sees no second side effect,
and for destinations without an idempotency hook (Slack, SMTP) the duplicates are bounded
by the records in flight when the process died (the ledger knows everything recorded).

The sinks run as real `wedsync sink <kind>` processes; the servers count what arrives."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import psycopg2
import pytest
from confluent_kafka import Producer
from streams.dev.fakes.email import SmtpCapture
from streams.dev.fakes.kit import FakeServer
from streams.dev.fakes.slack import SlackFake
from streams.dev.fakes.webhook import WebhookReceiver
from streams.dev.local import SLACK_TOKEN, WEBHOOK_SECRET, allow_list_env
from streams.kafka.codec import TopicCodecs
from streams.topics import DELIVER, Destination

from tests.integration.cdc_support import PlatformDb
from tests.integration.sinks.support import own_broker, results, wait_until

pytestmark = pytest.mark.integration

N = 300
IN_FLIGHT = 20  # WEDSYNC_SINK_CONCURRENCY of the sink processes


def _envelope(n: int, run: str) -> dict[str, Any]:
    event = f"kill-{run}-{n}"
    return {
        "delivery_id": f"dlv-{event}", "event_id": event, "event_type": "form.response_received",
        "aggregate_id": f"form-{run}-{n}", "aggregate_version": n, "source_ts_ms": 1,
        "routed_at_ms": 1, "recipient_id": "supplier-kill", "integration_id": None, "attempt": 0,
    }  # fmt: skip


def _produce(bootstrap: str, codecs: TopicCodecs, kind: Destination, records: list[dict]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    codec = codecs[DELIVER[kind].deliver]
    for record in records:
        producer.produce(DELIVER[kind].deliver.name, codec.encode(record),
                         record["aggregate_id"].encode())  # fmt: skip
    assert producer.flush(30) == 0


def _sink(kind: Destination, bootstrap: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "streams.app.cli", "sink", kind.value,
         *([] if "WEDSYNC_SINK_PLATFORM_DSN" in env else ["--dev-credentials"])],
        env={
            **os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "WEDSYNC_SINK_CONCURRENCY": str(IN_FLIGHT),
            **env,
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _kill_midway_then_restart(
    kind: Destination, bootstrap: str, codecs: TopicCodecs, env: dict[str, str],
    arrived: Callable[[], int],
) -> list[dict[str, Any]]:  # fmt: skip
    """Run a sink until a third of the batch arrived, SIGKILL it, restart it, and return the
    ledger once every delivery is recorded as delivered."""
    first = _sink(kind, bootstrap, env)
    try:
        wait_until(lambda: arrived() >= N // 3, timeout=90, every=0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    assert arrived() < N, "the batch finished before the kill: nothing was tested"
    second = _sink(kind, bootstrap, env)
    try:
        wait_until(lambda: _delivered(bootstrap, codecs, kind) >= N, timeout=120, every=0.5)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    return [r for r in results(bootstrap, codecs) if r["destination"] == kind.value]


def _delivered(bootstrap: str, codecs: TopicCodecs, kind: Destination) -> int:
    rows = results(bootstrap, codecs)
    return len({r["delivery_id"] for r in rows
                if r["destination"] == kind.value and r["outcome"] == "delivered"})  # fmt: skip


@pytest.fixture
def bootstrap() -> Iterator[str]:
    with own_broker() as address:
        yield address


def test_webhooks_lose_nothing_and_repeat_no_side_effect(
    bootstrap: str, codecs: TopicCodecs, platform: PlatformDb
) -> None:
    receiver = WebhookReceiver(secret=WEBHOOK_SECRET)
    receiver.switches.latency_ms = 20
    run = uuid.uuid4().hex[:6]
    with FakeServer(receiver) as server, psycopg2.connect(platform.dsn) as conn:
        cur = conn.cursor()
        cur.execute("INSERT INTO suppliers (business_name) VALUES ('K') RETURNING id")
        supplier = cur.fetchone()[0]
        cur.execute(
            "INSERT INTO webhook_endpoints (supplier_id, endpoint_url, secret_key) "
            "VALUES (%s, %s, %s) RETURNING id",
            (supplier, f"{server.url}/hooks/k", WEBHOOK_SECRET),
        )
        endpoint = str(cur.fetchone()[0])
        conn.commit()
        records = [
            {**_envelope(n, run), "endpoint_id": endpoint, "endpoint_url": f"{server.url}/hooks/k",
             "event_name": "form_responses.insert", "body_json": json.dumps({"n": n})}
            for n in range(N)
        ]  # fmt: skip
        _produce(bootstrap, codecs, Destination.WEBHOOK, records)
        ledger = _kill_midway_then_restart(
            Destination.WEBHOOK, bootstrap, codecs,
            {"WEDSYNC_SINK_PLATFORM_DSN": platform.dsn, **allow_list_env(server.port)},
            lambda: receiver.counters["side_effects"],
        )  # fmt: skip
    assert receiver.counters["side_effects"] == N
    assert receiver.counters["bad_signature"] == 0
    assert receiver.counters["duplicates"] <= IN_FLIGHT
    delivered = Counter(r["delivery_id"] for r in ledger if r["outcome"] == "delivered")
    assert set(delivered) == {r["delivery_id"] for r in records}
    print(f"webhook: {N} delivered, {receiver.counters['duplicates']} repeated webhook-ids "
          "absorbed by the receiver")  # fmt: skip


def test_slack_loses_nothing_and_repeats_at_most_what_was_in_flight(
    bootstrap: str, codecs: TopicCodecs
) -> None:
    fake = SlackFake(tokens=(SLACK_TOKEN,))
    fake.switches.latency_ms = 20
    run = uuid.uuid4().hex[:6]
    records = [
        {**_envelope(n, run), "channel": f"C{n % 30:04d}", "text": f"{run} message {n}",
         "blocks_json": "[]"}
        for n in range(N)
    ]  # fmt: skip
    with FakeServer(fake) as server:
        _produce(bootstrap, codecs, Destination.SLACK, records)
        _kill_midway_then_restart(
            Destination.SLACK, bootstrap, codecs,
            {**allow_list_env(server.port),
             "WEDSYNC_SLACK_API_BASE_URL": server.url, "WEDSYNC_SLACK_BOT_TOKEN": SLACK_TOKEN,
             "WEDSYNC_SLACK_RATE_PER_S": "1000", "WEDSYNC_SLACK_BURST": "1000"},
            lambda: fake.counters["messages_posted"],
        )  # fmt: skip
    texts = Counter(t for posted in fake.stats()["posted"].values() for t in posted)
    assert set(texts) == {r["text"] for r in records}
    repeats = sum(texts.values()) - len(texts)
    assert repeats <= IN_FLIGHT
    print(f"slack: {N} posted, {repeats} posted twice (bound: {IN_FLIGHT} in flight)")


def test_email_loses_nothing_and_repeats_at_most_what_was_in_flight(
    bootstrap: str, codecs: TopicCodecs
) -> None:
    run = uuid.uuid4().hex[:6]
    records = [
        {**_envelope(n, run), "to_address": f"v{n}@vendors.example", "to_name": None,
         "template": "generic", "subject": f"{run} {n}", "variables": {"summary": "x"}}
        for n in range(N)
    ]  # fmt: skip
    with SmtpCapture() as smtp:
        _produce(bootstrap, codecs, Destination.EMAIL, records)
        _kill_midway_then_restart(
            Destination.EMAIL, bootstrap, codecs,
            {"WEDSYNC_EMAIL_SMTP_HOST": "127.0.0.1", "WEDSYNC_EMAIL_SMTP_PORT": str(smtp.port),
             **allow_list_env(smtp.port)},
            lambda: len(smtp.messages),
        )  # fmt: skip
        ids = Counter(str(m.message["Message-ID"]) for m in smtp.messages)
    assert len(ids) == N
    repeats = sum(ids.values()) - len(ids)
    assert repeats <= IN_FLIGHT
    print(f"email: {N} sent, {repeats} sent twice (bound: {IN_FLIGHT} in flight)")
