"""CDC source throughput against `pg_recvlogical` reading the same slot contents, and against
a raw confluent-kafka producer, measured in the same run.

A throwaway PostgreSQL with the platform's schema (schemas/platform/platform.sql) gets
2 x `ROUNDS` slots at the same position, then `ROWS` form responses (uuid ids, text, an
integer, a timestamptz; inserts in transactions of `TX_ROWS` rows) are written before
anything reads, so each reader drains the same backlog, `pg_recvlogical` and the source in
turn, `ROUNDS` times (a pair measured back to back shares the machine's moment: the ratio
printed is the median of the pairs', with every pair's beside it):

- `pg_recvlogical` (PostgreSQL's own client, C) streams one slot's pgoutput to /dev/null up
  to the WAL end: the floor of reading the changes at all (the issue-19 target is
  source / pg_recvlogical >= 0.5);
- the source streams the other: read the slot, decode pgoutput, encode Avro, produce
  (idempotent, acks=all) and wait for every acknowledgement;
- a raw producer produces the same number of records of the same encoded size with the same
  producer settings and flushes.

The broker is each engine of `bench.engines` in turn (Apache Kafka first). The ratios are
the numbers to watch, since the broker, PostgreSQL and the client share the machine's cores.

`run()` returns the lines to print; `make bench` calls it.
"""

from __future__ import annotations

import subprocess
import time

import psycopg2
from connectors.sources.postgres_cdc.config import PostgresCdcConfig
from connectors.sources.postgres_cdc.source import PostgresCdcSource, make_producer
from streams import metrics
from streams.background import Background
from streams.dev.db import PG_BIN, PostgresServer, create_platform_database, throwaway_postgres
from streams.kafka.admin import create_topics
from streams.kafka.codec import TopicCodecs
from streams.kafka.registry import EmbeddedRegistry
from streams.kafka.schema_store import SchemaStore
from streams.settings import REPO_ROOT
from streams.topics import INGEST_CDC, INGEST_STATE

from bench import engines
from bench.engines import broker as bench_broker

ROWS = 60_000
TX_ROWS = 100
TIMEOUT_S = 120.0
TABLE = "form_responses"

ON_BROKER = True  # `make bench` runs this suite on each engine (bench.engines)
ROUNDS = 3
SLOTS = [(f"bench_{i}", f"bench_recv_{i}") for i in range(ROUNDS)]  # (source's, baseline's)


def _produced() -> float:
    """Inserts the source produced and Kafka acknowledged. Only this counter is collected:
    collecting the whole registry (the process collector reads /proc) every few ms held the
    GIL for a third of the time, slowing the source it measures."""
    for family in metrics.CDC_EVENTS_PRODUCED.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels.get("op") == "c":
                return sample.value
    return 0.0


def _write_backlog(dsn: str) -> None:
    """Every slot, then the backlog: each slot holds the same ROWS changes."""
    setup = psycopg2.connect(dsn)
    setup.autocommit = True
    with setup.cursor() as cur:
        cur.execute("INSERT INTO suppliers (business_name) VALUES ('Photo') RETURNING id")
        (supplier,) = cur.fetchone()
        cur.execute(f"CREATE PUBLICATION bench FOR TABLE {TABLE}")
        for slot in [name for pair in SLOTS for name in pair]:
            cur.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
    setup.close()
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        for _ in range(ROWS // TX_ROWS):
            cur.execute(
                f"INSERT INTO {TABLE} (supplier_id, couple_id, client_name, form_name, "
                "question_count) SELECT %s, gen_random_uuid(), 'Alex & Sam', 'Wedding day', 12 "
                "FROM generate_series(1, %s)",
                (supplier, TX_ROWS),
            )
            conn.commit()
    conn.close()


def _cdc(bootstrap: str, codecs: TopicCodecs, config: PostgresCdcConfig) -> tuple[float, int]:
    """Seconds for the source to drain ROWS changes into Kafka (acknowledged). Its producer
    has its idempotent producer id and the topic's leader before the clock starts (a fresh
    cluster loads its coordinator for seconds), as the baseline's has."""
    producer = make_producer(bootstrap)
    producer.produce(INGEST_CDC.name, value=b"", key=b"warmup")
    producer.flush(30)
    source = PostgresCdcSource(config, producer, codecs)
    base = _produced()
    started = time.perf_counter()
    cdc = Background(source.run, "cdc")
    deadline = started + TIMEOUT_S
    while _produced() - base < ROWS and time.perf_counter() < deadline and cdc.alive:
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    cdc.stop()  # re-raises what the source raised
    producer.close()  # its threads stop now, not when the broker is long gone
    return elapsed, int(_produced() - base)


def _wal_end(dsn: str) -> str:
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_current_wal_lsn()::text")
            (lsn,) = cur.fetchone()
    finally:
        conn.close()
    return str(lsn)


def _recvlogical(pg: PostgresServer, dbname: str, slot: str, end_lsn: str) -> float:
    """Seconds for `pg_recvlogical` to stream `slot`'s backlog (pgoutput, the source's
    options) to /dev/null up to `end_lsn`."""
    cmd = [
        str(PG_BIN / "pg_recvlogical"), "-h", pg.host, "-p", str(pg.port), "-U", pg.user,
        "-d", dbname, "--slot", slot, "--start", "--no-loop", "-f", "/dev/null",
        "-o", "proto_version=1", "-o", "publication_names=bench", "--endpos", end_lsn,
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(cmd, check=True, timeout=TIMEOUT_S, capture_output=True)
    return time.perf_counter() - started


def _baseline(bootstrap: str, record_size: int) -> float:
    """Seconds for a bare producer to produce and flush ROWS records of `record_size` bytes."""
    producer = make_producer(bootstrap)
    value = b"\0" * record_size
    producer.produce(INGEST_CDC.name, value=value, key=b"warmup")
    producer.flush(10)
    started = time.perf_counter()
    for i in range(ROWS):
        while True:
            try:
                producer.produce(INGEST_CDC.name, value=value, key=f"{TABLE}:{i}".encode())
                break
            except BufferError:
                producer.poll(0.01)
        if i % 1000 == 0:
            producer.poll(0)
    producer.flush(TIMEOUT_S)
    return time.perf_counter() - started


def _record_size(codecs: TopicCodecs) -> int:
    from connectors.sources.postgres_cdc.decode import build_event

    _, event = build_event(
        db="bench", schema="public", table=TABLE, op="c", before=None,
        after={"id": "6b1f9c1e-2f43-4c1d-9a55-0c8a2b9f1a01",
               "supplier_id": "a3c5e7f9-1b2d-4e6f-8a0c-2e4f6a8c0e11",
               "couple_id": "0f6c1d6e-8b7a-4f35-b0a4-5d1e2c3b4a50", "client_name": "Alex & Sam",
               "form_name": "Wedding day", "question_count": 12,
               "submitted_at": "2026-11-22T03:22:00.123456+00:00"},
        primary_key=("id",), lsn=22_000_000, commit_lsn=22_000_100, tx_id=1234,
        commit_ms=1_790_000_000_000, now_ms=1_790_000_000_000,
    )  # fmt: skip
    return len(codecs[INGEST_CDC].encode(dict(event)))


def run() -> list[str]:
    store = SchemaStore(REPO_ROOT / "schemas")
    codecs = TopicCodecs(store, EmbeddedRegistry(store))
    with bench_broker() as running, throwaway_postgres() as pg:
        bootstrap = running.bootstrap_servers
        create_topics(bootstrap, [INGEST_CDC, INGEST_STATE])
        dsn = create_platform_database(pg, "bench")
        _write_backlog(dsn)
        end = _wal_end(dsn)
        pairs: list[tuple[float, float, int]] = []  # (pg_recvlogical s, source s, drained)
        for slot, recv_slot in SLOTS:
            recv_s = _recvlogical(pg, "bench", recv_slot, end)
            config = PostgresCdcConfig(
                host=pg.host, port=pg.port, user=pg.user, dbname="bench", slot_name=slot,
                publication="bench", snapshot=False,
            )  # fmt: skip
            pairs.append((recv_s, *_cdc(bootstrap, codecs, config)))
        size = _record_size(codecs)
        base_s = _baseline(bootstrap, size)
    ratios = sorted((drained / cdc_s) / (ROWS / recv_s) for recv_s, cdc_s, drained in pairs)
    recv_s, cdc_s, drained = sorted(pairs, key=lambda p: p[2] / p[1])[ROUNDS // 2]
    cdc_rate, recv_rate, base_rate = drained / cdc_s, ROWS / recv_s, ROWS / base_s
    each = ", ".join(f"{r:.2f}" for r in ratios)
    return [
        f"cdc: {drained} row changes ({ROWS // TX_ROWS} transactions) drained from the slot "
        f"into Kafka ({engines.current()}) in {cdc_s:.2f}s = {cdc_rate:,.0f} events/s "
        f"(the median of {ROUNDS} rounds)",
        f"cdc baseline: pg_recvlogical, the same backlog to /dev/null in {recv_s:.2f}s "
        f"= {recv_rate:,.0f} changes/s",
        f"cdc baseline: raw confluent-kafka producer, {ROWS} records of {size} B "
        f"in {base_s:.2f}s = {base_rate:,.0f} msgs/s",
        f"cdc ratio: source / pg_recvlogical = {ratios[ROUNDS // 2]:.2f}, the median of "
        f"{ROUNDS} back-to-back pairs ({each}) (target 0.5)",
        f"cdc ratio: source / raw producer = {cdc_rate / base_rate:.2f}",
    ]


if __name__ == "__main__":
    for line in run():
        print(line)
