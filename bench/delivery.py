"""Commit-to-provider latency, with its budget: a row change in PostgreSQL to the provider's
answer through the whole pipeline on one machine, at a trickle and under load.

A throwaway PostgreSQL with the platform schema, `wedsync cdc`, `wedsync worker`
(normalize, state, routing) and one `wedsync sink <kind>` process per destination kind, as
deployed, every provider a local server in its own process (`wedsync fake smtp`, `crm`,
`webhook-receiver`: `bench.servers`). `SUPPLIERS` suppliers, each with email, a photography
CRM and a customer webhook subscribed to `form_responses.insert`; form responses are
inserted round-robin over them (one transaction each): after `WARM` at `RATE` a second, not
measured (groups joined, every path run, the broker's JIT warm: a fresh JVM compiles for its
first minute, and a deployed broker is long past it), `TRICKLE` at one a second (`make
run`'s pace), then `CHANGES` at `RATE` a second, so no single CRM or endpoint is pushed past
its own rate limit (5/s and 10/s by default). Each change means an email, a CRM call and a
signed webhook.

The figure, per delivered result on the ledger: the provider's answer minus the commit
time, split into hops by `bench.budget` (commit -> CDC record -> domain event -> routed
record -> sink's pickup -> request sent -> provider's answer -> result acked). The baseline
is the first hop alone, commit -> CDC record: the floor the rest of the pipeline adds to.

`run()` returns the lines to print; `make bench` calls it.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bench import budget, cpu

ON_BROKER = True  # `make bench` runs this suite on each engine (bench.engines)

RATE = int(os.environ.get("BENCH_DELIVERY_RATE", "250"))
CHANGES = RATE * 10
TRICKLE_RATE = 1  # `make run`'s pace: one change a second
TRICKLE = int(os.environ.get("BENCH_DELIVERY_TRICKLE", "40"))
# not measured: 15 s at RATE. Kafka's C2 compiler, per thread (/proc), during the 10 s load:
# with 5 s of warm-up 2.4 s of the broker's 6.0 s of CPU; with 15 s 0.24-0.48 ms a change;
# with 30 s 0.08-0.12, but the load's p99 was no better over five runs (90-753 ms against
# 91-375 ms over six with 15 s): the misses are stalls, not the compiler alone
WARM = int(os.environ.get("BENCH_DELIVERY_WARM", str(RATE * 15)))
SUPPLIERS = 100
CRM_KEY = "bench-delivery-crm-key"


def run() -> list[str]:
    import psycopg2
    from streams.dev import db as devdb
    from streams.dev.demo import worker_process
    from streams.kafka.admin import create_topics
    from streams.kafka.codec import TopicCodecs
    from streams.settings import Settings

    from bench.engines import broker as bench_broker
    from bench.servers import cdc_process

    with bench_broker() as broker, devdb.throwaway_postgres() as server, \
            _providers() as local:  # fmt: skip
        bootstrap = broker.bootstrap_servers
        create_topics(bootstrap)
        stamped = budget.stamp_on_append(bootstrap)
        settings = Settings(kafka_bootstrap_servers=bootstrap, app_id="bench-delivery")
        codecs = TopicCodecs.from_settings(settings)
        dsn = devdb.create_platform_database(server, "wedsync")
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        cur = conn.cursor()
        suppliers = _seed(cur, local)
        phases: list[tuple[str, int, int]] = []  # (name, first commit ms, deliveries)
        usage: dict[str, list[str]] = {}  # phase -> where the machine's CPU went
        engine = "Kafka" if broker.engine == "kafka" else "Tansu"
        database = cpu.postmaster(server.datadir)
        own = cpu.roots("bench (inserts)", ((p, engine) for p in broker.pids), database.items())
        elsewhere = [*broker.pids, *database, *local.pids]
        unfavoured = cpu.favour(elsewhere)
        with cdc_process(bootstrap, server, "wedsync", settings.app_id), \
                worker_process(bootstrap, settings), \
                _sink_processes(bootstrap, local, dsn):  # fmt: skip
            _insert(cur, suppliers, WARM, rate=RATE)  # warm-up: groups joined, paths hot,
            expected = WARM * 3  # Kafka's JIT past its first seconds (a deployed broker is warm)
            _wait_delivered(bootstrap, codecs, expected, timeout=180)
            for name, count, rate in ((f"trickle, {TRICKLE_RATE}/s", TRICKLE, TRICKLE_RATE),
                                      (f"load, {RATE}/s", CHANGES, RATE)):  # fmt: skip
                phases.append((name, int(time.time() * 1000), count * 3))
                with cpu.Window(own) as window:
                    _insert(cur, suppliers, count, rate=rate)
                    expected += count * 3
                    _wait_delivered(bootstrap, codecs, expected, timeout=300)
                usage[name] = window.report(count, "change")
        conn.close()
        hops = budget.collect(bootstrap, codecs)
        others = _not_delivered(bootstrap, codecs)
    lines = [
        f"delivery: form responses inserted (one transaction each), each to SMTP, a CRM and a "
        f"customer webhook through CDC, worker, routing and `wedsync sink` processes; "
        f"{TRICKLE} at {TRICKLE_RATE}/s, then {CHANGES} at {RATE}/s, after {WARM} at {RATE}/s "
        "not measured (warm-up)",
        f"  hop times are when each record reached Kafka ({stamped})",
        f"  every process in a session of its own (Linux shares the CPU fairly between "
        f"sessions); {engine}, PostgreSQL and the providers' fakes, which a deployment runs "
        f"on machines of their own, at autogroup nice {cpu.FAVOURED_NICE}"
        + (f" (not set: {'; '.join(unfavoured)})" if unfavoured else ""),
    ]
    bounds = [start for _, start, _ in phases] + [2**62]
    for (name, start, _), stop in zip(phases, bounds[1:], strict=True):
        lines += budget.report(name, [h for h in hops if start <= h.commit_ms < stop])
        lines += usage.get(name, [])
    if others:
        lines.append(f"  attempts that were not deliveries: {others}")
    return lines


@dataclass
class _Providers:
    """Where the provider processes listen."""

    smtp: int
    crm: int
    webhook: int
    pids: tuple[int, ...]

    def ports(self) -> list[int]:
        return [self.smtp, self.crm, self.webhook]


@contextlib.contextmanager
def _providers() -> Iterator[_Providers]:
    """The SMTP capture, the CRM and the webhook receiver, each in a process of its own."""
    from streams.dev.local import WEBHOOK_SECRET

    from bench.servers import fake_provider

    with fake_provider("smtp") as smtp, \
            fake_provider("crm", {"WEDSYNC_FAKE_CRM_KEYS": CRM_KEY}) as crm, \
            fake_provider("webhook-receiver", {"WEDSYNC_FAKE_WEBHOOK_SECRET": WEBHOOK_SECRET}) \
            as webhook:  # fmt: skip
        yield _Providers(smtp=smtp.port, crm=crm.port, webhook=webhook.port,
                         pids=(smtp.pid, crm.pid, webhook.pid))  # fmt: skip


def _seed(cur: Any, local: _Providers) -> list[tuple[str, str]]:
    """`SUPPLIERS` suppliers, each with email, a photography CRM and a customer webhook."""
    from streams.dev.local import WEBHOOK_SECRET

    crm_url = f"http://127.0.0.1:{local.crm}/photography/webhook"
    webhook_url = f"http://127.0.0.1:{local.webhook}/hooks/photo"
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
            (supplier, crm_url, CRM_KEY),
        )
        cur.execute(
            "INSERT INTO webhook_endpoints (supplier_id, endpoint_url, secret_key, "
            "subscribed_events) VALUES (%s, %s, %s, '{form_responses.insert}')",
            (supplier, webhook_url, WEBHOOK_SECRET),
        )
        couple = str(uuid.uuid4())
        cur.execute(  # the CRM files each response under the couple's wedding
            "INSERT INTO wedding_details (couple_id, wedding_date) VALUES (%s, '2027-06-12')",
            (couple,),
        )
        suppliers.append((supplier, couple))
    return suppliers


@contextlib.contextmanager
def _sink_processes(bootstrap: str, local: _Providers, dsn: str) -> Iterator[None]:
    from streams.dev.local import allow_list_env

    from bench.servers import children

    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "WEDSYNC_SINK_PLATFORM_DSN": dsn,
        **allow_list_env(*local.ports()),
        "WEDSYNC_EMAIL_SMTP_HOST": "127.0.0.1", "WEDSYNC_EMAIL_SMTP_PORT": str(local.smtp),
    }  # fmt: skip
    with children([["sink", kind] for kind in ("email", "crm", "webhook")], env, 30):
        yield


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

    # few, large answers: the bench's own CPU comes off what it measures
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4()}",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 500,
                         "fetch.min.bytes": 256 * 1024})  # fmt: skip
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


if __name__ == "__main__":
    for line in run():
        print(line)
