"""Sink start-up with a long history: the time and memory of `LedgerReader.load()` (what
`wedsync sink <kind>` does before it consumes) with 10,000,000 delivery results written, on
Apache Kafka (one KRaft node).

History: `RESULTS` delivered email results on `wedsync.delivery.results`, timestamps spread
evenly over the last 6.5 days (inside the topic's 7-day retention), every one with its own
delivery id and source offset (as a real week's would be), produced from one pre-encoded
template whose bytes are patched; and the compacted `wedsync.delivery.ledger.email` written
as the runtime writes it, one entry per ten results over `PAIRS` (target, wedding) keys, then
given up to `COMPACT_WAIT_S` for the log cleaner (with 1 MB segments: `_small_segments`).
Every delivery record is committed, so the start reads the compacted ledger and the results
of the copy window (30 minutes).

Figures, each start in a fresh process (its peak RSS minus the RSS before `load`):
- project: the start with `RESULTS` results;
- baseline (same run, a second broker): the same start, same `PAIRS` keys, 10,000 results:
  time and memory must not grow with the results;
- old design: the full read of the results the sink made before (every result folded),
  measured on the first `OLD_SAMPLE` results of the same topic and extrapolated linearly
  to `RESULTS` (its cost is one decode and fold per result).
Target: start-up under 5 s with 10 million results.

`BENCH_LEDGER_RESULTS` and `BENCH_LEDGER_OLD_SAMPLE` change the counts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

RESULTS = int(os.environ.get("BENCH_LEDGER_RESULTS", "10000000"))
BASELINE_RESULTS = 10_000
OLD_SAMPLE = int(os.environ.get("BENCH_LEDGER_OLD_SAMPLE", "1000000"))
PAIRS = 100_000
SPAN_MS = int(6.5 * 86_400 * 1000)
COMPACT_WAIT_S = 120.0
GROUP = "wedsync-sink-email"
TARGET_S = 5.0
OFFSET_BASE = 2**35  # source offsets whose zigzag varint is always 6 bytes long


@contextmanager
def _broker() -> Iterator[str]:
    """Apache Kafka only, whatever the pass: the bounded start rests on log compaction,
    which the embedded Tansu never does (FACTS.md), so its figure would measure nothing."""
    from bench.engines import broker

    with broker("kafka") as running:
        yield running.bootstrap_servers


def _varint(n: int) -> bytes:
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def _template() -> tuple[bytes, bytes, bytes, bytes]:
    """One encoded delivered result, split around its delivery id (16 characters), its
    aggregate id (10) and its source offset: value = a + id + b + aggregate + c +
    varint(source offset) + end, where end is the null of every optional field after it
    (taken from the encoding, so a field a new schema version appends is carried)."""
    from streams.kafka.codec import TopicCodecs
    from streams.kafka.registry import EmbeddedRegistry
    from streams.kafka.schema_store import SchemaStore
    from streams.settings import REPO_ROOT
    from streams.topics import DELIVER, DELIVERY_RESULTS, Destination

    store = SchemaStore(REPO_ROOT / "schemas")
    codec = TopicCodecs(store, EmbeddedRegistry(store))[DELIVERY_RESULTS]
    value = codec.encode({
        "delivery_id": "D" * 16, "event_id": "evt-bench", "event_type": "wedding.date_changed",
        "destination": "email", "target": "email:supplier-0001", "integration_id": None,
        "attempt": 0, "outcome": "delivered", "status_code": 250, "latency_ms": 12.5,
        "provider_id": None, "error_class": None, "error_message": None,
        "source_ts_ms": 1_700_000_000_000, "completed_at_ms": 1_700_000_000_100,
        "aggregate_id": "A" * 10, "aggregate_version": 1_000_000, "routed_at_ms": 0,
        "source_topic": DELIVER[Destination.EMAIL].deliver.name, "source_partition": 0,
        "source_offset": OFFSET_BASE, "superseded_by": None,
    })  # fmt: skip
    offset = _varint(OFFSET_BASE)
    at = value.rindex(offset)
    body, end = value[:at], value[at + len(offset) :]
    assert set(end) <= {0}, "the fields after source_offset must all be null in the template"
    a, rest = body.split(b"D" * 16)
    b, c = rest.split(b"A" * 10)
    spliced = codec.decode(
        a + b"d%015d" % 7 + b + b"w%09d" % 3 + c + _varint(OFFSET_BASE + 7) + end
    )
    assert (spliced["delivery_id"], spliced["source_offset"]) == (f"d{7:015d}", OFFSET_BASE + 7)
    return a, b, c, end


def _write(bootstrap: str, results: int) -> dict[str, float]:
    """History: `results` results over the span, and the compacted ledger's entries."""
    from confluent_kafka import Producer
    from connectors.sinks.ledger_reader import marker
    from streams.kafka.admin import create_topics
    from streams.kafka.codec import TopicCodecs
    from streams.kafka.registry import EmbeddedRegistry
    from streams.kafka.schema_store import SchemaStore
    from streams.settings import REPO_ROOT
    from streams.topics import DELIVERY_RESULTS, LEDGER, Destination

    create_topics(bootstrap)
    ledger = LEDGER[Destination.EMAIL].name
    _small_segments(bootstrap, ledger)
    a, b, c, end = _template()
    producer = Producer({
        "bootstrap.servers": bootstrap, "linger.ms": 50, "batch.size": 1_000_000,
        "acks": 1, "queue.buffering.max.messages": 2_000_000,
        "queue.buffering.max.kbytes": 1_048_576, "log.connection.close": False,
    })  # fmt: skip
    produce, name, parts = producer.produce, DELIVERY_RESULTS.name, DELIVERY_RESULTS.partitions
    start_ms = int(time.time() * 1000) - SPAN_MS
    step = SPAN_MS / results
    started = time.perf_counter()
    for i in range(results):
        value = a + b"d%015d" % i + b + b"w%09d" % (i % PAIRS) + c + _varint(OFFSET_BASE + i)
        ts = start_ms + int(i * step)
        try:
            produce(name, value + end, None, i % parts, timestamp=ts)
        except BufferError:
            producer.poll(0.1)
            produce(name, value + end, None, i % parts, timestamp=ts)
    # the runtime's writes of newest versions, keyed (target, wedding): one per ten results
    entries = max(PAIRS, results // 10)
    for j in range(entries):
        wedding = b"w%09d" % (j % PAIRS)
        value = a + b"d%015d" % j + b + wedding + c + _varint(OFFSET_BASE + j) + end
        try:
            produce(ledger, value, b"email:supplier-0001\x1fwedding\x1f" + wedding)
        except BufferError:
            producer.poll(0.1)
            produce(ledger, value, b"email:supplier-0001\x1fwedding\x1f" + wedding)
    store = SchemaStore(REPO_ROOT / "schemas")
    codec = TopicCodecs(store, EmbeddedRegistry(store))[DELIVERY_RESULTS]
    producer.produce(ledger, marker(codec, Destination.EMAIL), b"~backfilled")
    assert producer.flush(300) == 0, "history not acknowledged"
    produced_s = time.perf_counter() - started
    kept = _wait_compacted(bootstrap, ledger)
    return {"produce_s": produced_s, "produce_rate": (results + entries) / produced_s,
            "ledger_writes": entries + 1, "ledger_records_after_cleaner": kept}  # fmt: skip


def _small_segments(bootstrap: str, topic: str) -> None:
    """1 MB segments for the bench's ledger: its week of writes arrives in seconds, so with
    the catalog's 10-minute segments a third of them would still sit in the active segment
    (never cleaned) when the start is measured; on a real week the segments roll every 10
    minutes and the cleaner runs within 15."""
    from confluent_kafka.admin import (
        AdminClient,
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        ResourceType,
    )

    admin = AdminClient({"bootstrap.servers": bootstrap})
    entry = ConfigEntry("segment.bytes", str(2**20),
                        incremental_operation=AlterConfigOpType.SET)  # fmt: skip
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)


def _count(bootstrap: str, topic: str) -> int:
    from confluent_kafka import Consumer
    from streams.kafka.replay import read_to_end

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-ledger-count",
                         "enable.auto.commit": False})  # fmt: skip
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        seen: list[Any] = []
        read_to_end(consumer, [(topic, p) for p in parts], lambda m: seen.append(None),
                    timeout=120)  # fmt: skip
        return len(seen)
    finally:
        consumer.close()


def _wait_compacted(bootstrap: str, topic: str) -> int:
    """Give the log cleaner up to COMPACT_WAIT_S to bring the ledger near its live keys."""
    deadline = time.monotonic() + COMPACT_WAIT_S
    records = _count(bootstrap, topic)
    while records > 2 * PAIRS and time.monotonic() < deadline:
        time.sleep(5)
        records = _count(bootstrap, topic)
    return records


def _start(bootstrap: str, mode: str, limit: int = 0) -> dict[str, Any]:
    """Run one start in a fresh process: `new` (LedgerReader.load) or `old` (fold every
    result from the beginning, as the sink did before, stopping after `limit`)."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.ledger", mode, bootstrap, str(limit)],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"{mode} start failed: {out.stderr[-2000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    """This process's peak RSS (VmHWM: unlike ru_maxrss it does not carry the parent's
    peak across exec)."""
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def _child(mode: str, bootstrap: str, limit: int) -> None:
    """One start, in this (fresh) process; prints a JSON line."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    from connectors.sinks.ledger_reader import LedgerReader
    from streams.kafka.codec import TopicCodecs
    from streams.kafka.registry import EmbeddedRegistry
    from streams.kafka.schema_store import SchemaStore
    from streams.logic.ledger import LedgerState
    from streams.settings import REPO_ROOT
    from streams.topics import DELIVERY_RESULTS

    store = SchemaStore(REPO_ROOT / "schemas")
    codec = TopicCodecs(store, EmbeddedRegistry(store))[DELIVERY_RESULTS]
    state = LedgerState("email")
    before = _rss_mb()
    started = time.perf_counter()
    if mode == "new":
        reader = LedgerReader(bootstrap, GROUP, codec, state)
        reader.load(timeout=600)
        read = reader.read_at_start
        reader.close()
    else:
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-ledger-old",
                             "enable.auto.commit": False})  # fmt: skip
        consumer.assign([TopicPartition(DELIVERY_RESULTS.name, p, OFFSET_BEGINNING)
                         for p in range(DELIVERY_RESULTS.partitions)])  # fmt: skip
        read = 0
        while read < limit:
            for msg in consumer.consume(10_000, 1.0):
                if not msg.error():
                    state.apply(codec.decode(msg.value()))
                    read += 1
        consumer.close()
    elapsed = time.perf_counter() - started
    held = {"versions": len(state.versions), "delivered": len(state.delivered)}
    print(json.dumps({"seconds": elapsed, "read": read, "rss_mb": _peak_mb() - before, **held}))


def run() -> list[str]:
    lines = []
    with _broker() as bootstrap:
        written = _write(bootstrap, BASELINE_RESULTS)
        base = _start(bootstrap, "new")
    lines.append(
        f"  baseline: {BASELINE_RESULTS:,} results, {written['ledger_records_after_cleaner']:,} "
        f"ledger records: start {base['seconds']:.2f} s, +{base['rss_mb']:.0f} MB RSS, "
        f"{base['read']:,} records read"
    )
    with _broker() as bootstrap:
        written = _write(bootstrap, RESULTS)
        lines.append(
            f"  history: {RESULTS:,} results + {written['ledger_writes']:,} ledger writes in "
            f"{written['produce_s']:.0f} s ({written['produce_rate']:,.0f}/s); "
            f"{written['ledger_records_after_cleaner']:,} ledger records after the cleaner"
        )
        new = _start(bootstrap, "new")
        big = min(OLD_SAMPLE, RESULTS)
        small = _start(bootstrap, "old", big // 4)
        old = _start(bootstrap, "old", big)
    # the old full read costs per result: its slope between the two samples, extrapolated
    per_s = (old["seconds"] - small["seconds"]) / (big - big // 4)
    per_mb = (old["rss_mb"] - small["rss_mb"]) / (big - big // 4)
    old_s = old["seconds"] + per_s * (RESULTS - big)
    old_mb = old["rss_mb"] + per_mb * (RESULTS - big)
    at_10m = RESULTS >= 10_000_000
    verdict = ("met" if new["seconds"] < TARGET_S else "NOT met") if at_10m else (
        f"not measured at 10 M (BENCH_LEDGER_RESULTS={RESULTS})")  # fmt: skip
    lines += [
        f"  project: {RESULTS:,} results: start {new['seconds']:.2f} s, "
        f"+{new['rss_mb']:.0f} MB RSS, {new['read']:,} records read "
        f"({new['versions']:,} versions, {new['delivered']:,} delivered ids held)",
        f"  ratio to the baseline ({BASELINE_RESULTS:,} results): "
        f"time x{new['seconds'] / base['seconds']:.2f}, "
        f"memory x{new['rss_mb'] / max(base['rss_mb'], 1):.2f}",
        f"  old design (every result folded): {big // 4:,} results {small['seconds']:.1f} s "
        f"+{small['rss_mb']:.0f} MB, {big:,} results {old['seconds']:.1f} s "
        f"+{old['rss_mb']:.0f} MB; extrapolated to {RESULTS:,}: {old_s:.0f} s, "
        f"+{old_mb:,.0f} MB (project x{old_s / new['seconds']:.0f} faster)",
        f"  target: start-up < {TARGET_S:.0f} s with 10,000,000 results: {verdict}",
    ]
    return lines


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in {"new", "old"}:
        _child(sys.argv[1], sys.argv[2], int(sys.argv[3]))
    else:
        print("\n".join(run()))
