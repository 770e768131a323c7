"""Commit-to-provider latency: a row change in PostgreSQL to the provider's answer, at a
fixed offered load of 250 changes/s, through the whole pipeline on one machine.

A throwaway PostgreSQL with the platform schema, the real CDC source, `wedsync worker`
(normalize, state, routing) and one sink runtime per destination kind, every provider a
local server (`streams.dev.local`). `SUPPLIERS` suppliers, each with email, a
photography CRM and a customer webhook subscribed to `form_responses.insert`; `CHANGES` form
responses are inserted round-robin over them at `RATE` a second (one transaction each), so
no single CRM or endpoint is pushed past its own rate limit (5/s and 10/s by default). Each
change means an email (SMTP capture), a CRM call (fake) and a signed webhook (receiver); the
sinks run as `wedsync sink <kind>` processes, as deployed; the figure is, per delivered
result on the
ledger, `completed_at_ms - source_ts_ms` (the provider answered minus the commit time).

The baseline is the same insert -> CDC path measured to the CDC record on
`wedsync.ingest.cdc` (the floor the rest of the pipeline adds to).

`run()` returns the lines to print; `make bench` calls it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

RATE = int(os.environ.get("BENCH_DELIVERY_RATE", "250"))
CHANGES = RATE * 10
SUPPLIERS = 100


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run() -> list[str]:
    import psycopg2
    from streams.dev import db as devdb
    from streams.dev.broker import EmbeddedBroker
    from streams.dev.demo import cdc_running, worker_process
    from streams.dev.local import LocalProviders
    from streams.kafka.admin import create_topics
    from streams.kafka.codec import TopicCodecs
    from streams.settings import Settings

    with EmbeddedBroker() as broker, devdb.throwaway_postgres() as server, \
            LocalProviders() as local:  # fmt: skip
        bootstrap = broker.bootstrap_servers
        create_topics(bootstrap)
        settings = Settings(kafka_bootstrap_servers=bootstrap, app_id="bench-delivery")
        codecs = TopicCodecs.from_settings(settings)
        dsn = devdb.create_platform_database(server, "wedsync")
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        cur = conn.cursor()
        at = local.endpoints()
        crm_key = next(iter(local.fake("crm").api_keys))
        suppliers: list[tuple[str, str]] = []
        for n in range(SUPPLIERS):
            cur.execute(
                "INSERT INTO suppliers (business_name, email, notification_preferences) "
                "VALUES (%s, %s, %s) RETURNING id",
                (f"Lens {n}", f"lens{n}@vendors.example",
                 json.dumps({"realtime_channels": ["email"]})),
            )  # fmt: skip
            supplier = str(cur.fetchone()[0])
            cur.execute(
                "INSERT INTO supplier_integrations (supplier_id, integration_type, webhook_url, "
                "api_key) VALUES (%s, 'photography_crm', %s, %s)",
                (supplier, at.photo_crm, crm_key),
            )
            cur.execute(
                "INSERT INTO webhook_endpoints (supplier_id, endpoint_url, secret_key, "
                "subscribed_events) VALUES (%s, %s, %s, '{form_responses.insert}')",
                (supplier, at.webhook, at.webhook_secret),
            )
            couple = str(uuid.uuid4())
            cur.execute(  # the CRM files each response under the couple's wedding
                "INSERT INTO wedding_details (couple_id, wedding_date, time_zone) "
                "VALUES (%s, '2027-06-12', 'Europe/London')",
                (couple,),
            )
            suppliers.append((supplier, couple))
        with cdc_running(bootstrap, server, codecs), worker_process(bootstrap, settings), \
                _sink_processes(bootstrap, local, dsn):  # fmt: skip
            _insert(cur, suppliers, 20, rate=20)  # warm-up: groups joined, paths hot
            _wait_delivered(bootstrap, codecs, 20 * 3, timeout=180)
            started_ms = int(time.time() * 1000)
            _insert(cur, suppliers, CHANGES, rate=RATE)
            rows = _wait_delivered(bootstrap, codecs, (20 + CHANGES) * 3, timeout=300)
        conn.close()
        lags = [r["completed_at_ms"] - r["source_ts_ms"] for r in rows
                if r["source_ts_ms"] >= started_ms]  # fmt: skip
        by_kind: dict[str, list[float]] = {}
        for r in rows:
            if r["source_ts_ms"] >= started_ms:
                by_kind.setdefault(r["destination"], []).append(
                    r["completed_at_ms"] - r["source_ts_ms"]
                )
        floor = _cdc_floor(bootstrap, codecs, started_ms)
        others = _not_delivered(bootstrap, codecs)
    lines = [
        f"delivery: {CHANGES} form responses inserted at {RATE}/s (one transaction each), "
        "each to SMTP, a CRM and a customer webhook through CDC, worker, routing and sinks",
        f"  commit -> provider's answer, all {len(lags)} deliveries: p50 {_pct(lags, 0.5):.0f} "
        f"ms, p99 {_pct(lags, 0.99):.0f} ms",
    ]
    for kind, values in sorted(by_kind.items()):
        lines.append(
            f"    {kind:<8} p50 {_pct(values, 0.5):.0f} ms, p99 {_pct(values, 0.99):.0f} ms"
        )
    lines.append(
        f"  baseline, commit -> CDC record on wedsync.ingest.cdc: p50 {_pct(floor, 0.5):.0f} ms, "
        f"p99 {_pct(floor, 0.99):.0f} ms"
    )
    if others:
        lines.append(f"  attempts that were not deliveries: {others}")
    ratio = _pct(lags, 0.5) / max(_pct(floor, 0.5), 1)
    lines.append(f"  ratio of p50s (whole pipeline / CDC alone): {ratio:.1f}")
    return lines


@contextlib.contextmanager
def _sink_processes(bootstrap: str, local: Any, dsn: str) -> Iterator[None]:
    from streams.dev.broker import free_port
    from streams.dev.local import allow_list_env

    smtp_port = free_port()  # its own process: an SMTP exchange is six round trips, and the
    # providers sharing this process's GIL stretched each one (email p50 3 s at 50/s)
    smtp = subprocess.Popen(
        [sys.executable, "-m", "streams.app.cli", "fake", "smtp", "--port", str(smtp_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(2)
    env = {
        **os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "WEDSYNC_SINK_PLATFORM_DSN": dsn,
        **allow_list_env(*local.ports(), smtp_port),
        "WEDSYNC_EMAIL_SMTP_HOST": "127.0.0.1", "WEDSYNC_EMAIL_SMTP_PORT": str(smtp_port),
    }  # fmt: skip
    procs = [
        subprocess.Popen([sys.executable, "-m", "streams.app.cli", "sink", kind], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for kind in ("email", "crm", "webhook")
    ]  # fmt: skip
    try:
        yield
    finally:
        for proc in [*procs, smtp]:
            proc.send_signal(signal.SIGTERM)
        for proc in [*procs, smtp]:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _insert(cur: Any, suppliers: list[tuple[str, str]], count: int, *, rate: int) -> None:
    start = time.monotonic()
    for n in range(count):
        supplier, couple = suppliers[n % len(suppliers)]
        due = start + n / rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        cur.execute(
            "INSERT INTO form_responses (supplier_id, couple_id, client_name, form_name, "
            "question_count) VALUES (%s, %s, 'Alex & Sam', 'Wedding day', 12)",
            (supplier, couple),
        )


def _wait_delivered(
    bootstrap: str, codecs: Any, count: int, timeout: float
) -> list[dict[str, Any]]:
    from confluent_kafka import Consumer, TopicPartition
    from streams.topics import DELIVERY_RESULTS

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4()}",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 50})  # fmt: skip
    consumer.assign([TopicPartition(DELIVERY_RESULTS.name, p, 0)
                     for p in range(DELIVERY_RESULTS.partitions)])  # fmt: skip
    delivered: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(delivered) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(delivered)} of {count} delivered in {timeout:.0f} s")
            for msg in consumer.consume(1000, 0.5):
                if msg.error():
                    continue
                result = codecs[DELIVERY_RESULTS].decode(msg.value())
                if result["outcome"] == "delivered":
                    delivered.setdefault(result["delivery_id"], result)
    finally:
        consumer.close()
    return list(delivered.values())


def _not_delivered(bootstrap: str, codecs: Any) -> dict[str, int]:
    """(destination, outcome, error class) -> count, for every result but 'delivered'."""
    from streams.kafka.replay import read_topic
    from streams.topics import DELIVERY_RESULTS

    counts: dict[str, int] = {}

    def keep(msg: Any) -> None:
        r = codecs[DELIVERY_RESULTS].decode(msg.value())
        if r["outcome"] != "delivered":
            key = f"{r['destination']} {r['outcome']} {r['error_class']}"
            counts[key] = counts.get(key, 0) + 1

    read_topic(bootstrap, DELIVERY_RESULTS, keep, timeout=60)
    return counts


def _cdc_floor(bootstrap: str, codecs: Any, since_ms: int) -> list[float]:
    """Commit time -> the CDC record's own timestamp (when Kafka stored it), per change."""
    from streams.kafka.replay import read_topic
    from streams.topics import INGEST_CDC

    out: list[float] = []

    def keep(msg: Any) -> None:
        change = codecs[INGEST_CDC].decode(msg.value())
        if change["source"]["table"] == "form_responses" and change["source_ts_ms"] >= since_ms:
            out.append(msg.timestamp()[1] - change["source_ts_ms"])

    read_topic(bootstrap, INGEST_CDC, keep, timeout=60)
    return out


if __name__ == "__main__":
    for line in run():
        print(line)
