"""Routing throughput and latency: the shipped path against a plain confluent-kafka loop.

Every figure is measured twice, each time in a child process (`python -m bench.routing
--child`) whose catalog has another partition count (`WEDSYNC_PARTITIONS`): one partition per
topic (the issue's measuring setup: one partition, one worker) and the deployment's count
(default 6). On the embedded broker partitions are not free: Tansu 0.6 holds every fetch for
the consumer's whole `fetch.wait.max.ms` and then reads each fetched partition from its store,
at a cost that grows with the partition's log, so broker CPU grows with partitions x fetches.

Both paths run over the same realistic routing state (suppliers with channel preferences,
wedding vendors, CRM/venue/calendar integrations, customer webhooks) and the same `EVENTS`
domain events (a production-like mix: wedding date changes fanning out to every vendor, form
responses, profile updates, record.changed for webhooks):

(a) shipped: `wedsync worker` as a child process (Faust agents + the routing engine); state
    goes in as CDC, is folded into the state rows, then N events are produced and the clock
    stops when the engine's committed offsets reach N (offsets are committed only after the
    deliveries are acked).
(b) baseline: in this process, consume(5000) -> decode -> route (same pure logic, state in
    plain dicts) -> encode (fastavro, pre-parsed schemas) -> produce -> flush -> async commit.

Latency, on (a) at a fixed offered load (1,000 events/s, `TRIALS` times, each on a fresh
system with the broker floor measured just before it; then 250 events/s), per delivery:
- routing: from the event's `source_ts_ms` (stamped when it is produced to wedsync.events)
  to the output record (its CreateTime, set when the routing process produced it), read
  after the run; and, for the in-app topic, to the moment a live consumer here read it;
- pipeline: from the row change's commit time (stamped when the CDC record is produced to
  wedsync.ingest.cdc) through the Faust normalizer and the routing process to the output
  record: DOMAIN.md's "source change to delivery attempt".
The broker floor is one produce -> consume hop at the same message rates, no processing.

Then, on each broker (`PIPELINE_BROKERS`: Apache Kafka first, where the target is judged, then
Tansu, which holds every fetch), the pipeline alone at 1,000 changes/s (`TRIALS` runs of
`LATENCY_SECONDS`, one fresh system per broker, Apache Kafka's after `PIPELINE_WARM_S` at
that rate: a fresh JVM compiles its hot paths in its first seconds, and the first run after
a 2 s warm-up measured that, at 1.5-3x the p99 of the runs after it): p50/p99 to the routed
record and its two hops (commit -> the domain event the worker wrote, read back from
wedsync.events; that event -> the routed record), the worker's and the routing process's
CPU per change (from /proc) and how busy the whole machine was (/proc/stat: on two shared
cores other tenants' load shows up here), against the target "keeps up at 1,000 changes/s
with p99 under 200 ms".

Scaling (with more than one partition, on Apache Kafka): routed records per second with one,
then two `wedsync route` processes of the same group, each time with a backlog of
`SCALE_EVENTS` events that saturates one process, and CPU per routed record of the routing
processes (utime + stime from /proc), next to how much of the machine was idle meanwhile.
Target: two processes deliver at least 1.7x one while the machine has spare CPU.
While a latency phase runs, this process's garbage collector is off (`_no_gc`): its pauses
would be counted as the system's latency.
`run()` returns the lines to print.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from streams import topics
from streams.dev.broker import EmbeddedBroker, dev_broker
from streams.dev.cdc_like import CdcLike, wait_for_table
from streams.dev.demo import worker_process
from streams.dev.samples import change_event
from streams.kafka.admin import create_topics
from streams.kafka.codec import TopicCodecs
from streams.logic.normalize import normalize_change
from streams.logic.routing import load_rules, route
from streams.logic.state import RoutingState, StateTables
from streams.models import ChangeEvent, ColumnValue, DomainEvent, SourceRef
from streams.settings import Settings

from bench import cpu

WEDDINGS = 300
EVENTS = 12_000
WARMUP = 200
RATE = 1000
LATENCY_SECONDS = 5
TRIALS = 3  # of the headline latency phase: the machine is shared and noisy
PIPELINE_BROKERS = ("kafka", "tansu")  # streams.dev.broker.dev_broker choices; target on kafka
PIPELINE_TARGET_P99_MS = 200
PIPELINE_WARM_S = 10  # at RATE on Apache Kafka before the runs (Tansu, no JIT: 200 changes)
SCALE_EVENTS = 20_000
PARTS = ("routing", "pipeline", "scaling")  # `python -m bench.routing --parts ...` picks some
_REF = SourceRef(kind="cdc", topic=topics.INGEST_CDC.name, partition=0, offset=0, lsn=None,
                 commit_lsn=None, state_lsn=None, delivery_id=None, table=None)  # fmt: skip
WATERMARK_INTERVAL_S = 0.01  # the CDC source's default heartbeat cadence after commits
_CHANNELS = [None, ["email", "inapp"], ["email", "slack", "inapp", "sms"], ["inapp"]]


def _state_changes(rng: random.Random) -> list[ChangeEvent]:
    rows: list[tuple[str, dict[str, Any]]] = []
    for s in range(WEDDINGS * 2):
        prefs = rng.choice(_CHANNELS)
        prefs: dict[str, Any] = {"phone": "+447700900001", "slack_channel": f"C{s:05d}"}
        channels = rng.choice(_CHANNELS)
        if channels is not None:
            prefs["realtime_channels"] = channels
        rows.append(("suppliers", {
            "id": f"s-{s}", "business_name": f"Vendor {s}", "email": f"v{s}@example.com",
            "notification_preferences": json.dumps(prefs),
        }))  # fmt: skip
        kind = ("photography_crm", "google_calendar", "outlook_calendar")[s % 3]
        rows.append(("supplier_integrations", {"id": f"si-{s}", "supplier_id": f"s-{s}",
                     "integration_type": kind, "webhook_url": "https://crm.example/hook",
                     "settings": json.dumps({"calendar_id": f"cal-{s}"}),
                     "is_active": True}))  # fmt: skip
        if s % 4 == 0:
            rows.append(("webhook_endpoints", {"id": f"we-{s}", "supplier_id": f"s-{s}",
                         "endpoint_url": "https://hooks.example/in",
                         "subscribed_events": ["form_responses.insert", "wedding_details.update"],
                         "is_active": True}))  # fmt: skip
    for w in range(WEDDINGS):
        rows.append(("wedding_details", {"id": f"w-{w}", "couple_id": f"c-{w}"}))
        vendors = rng.sample(range(WEDDINGS * 2), 3)
        for i, s in enumerate(vendors):
            rows.append(("wedding_vendors", {"id": f"wv-{w}-{i}", "wedding_id": f"w-{w}",
                         "vendor_id": f"s-{s}", "vendor_type": "photographer"}))  # fmt: skip
        rows.append(("venue_integrations", {"id": f"vi-{w}", "venue_id": f"s-{vendors[0]}",
                     "webhook_url": "https://venue.example/api", "is_active": True}))  # fmt: skip
    return [change_event(t, "c", after=row, lsn=i + 1) for i, (t, row) in enumerate(rows)]


def _events(rng: random.Random, count: int, lsn: int) -> list[DomainEvent]:
    """`count` domain events, normalized here from `_changes`."""
    out: list[DomainEvent] = []
    while len(out) < count:
        for change in _changes(rng, count - len(out), lsn):
            out.extend(normalize_change(change, _REF))
        lsn += count
    return out[:count]


def _changes(rng: random.Random, count: int, lsn: int) -> list[ChangeEvent]:
    """`count` row changes in a production-like mix, LSNs from `lsn` + 1."""
    out: list[ChangeEvent] = []
    while len(out) < count:
        lsn += 1
        w, roll = rng.randrange(WEDDINGS), rng.random()
        if roll < 0.3:
            before: dict[str, ColumnValue] = {
                "id": f"w-{w}",
                "couple_id": f"c-{w}",
                "wedding_date": "2027-06-12",
                "venue_name": "Oak Barn",
                "ceremony_time": "14:00:00",
                "guest_count": 120,
                "time_zone": "Europe/London",
                "bride_name": "Alex",
                "groom_name": "Sam",
            }
            change = change_event(
                "wedding_details",
                "u",
                lsn=lsn,
                before=before,
                after={**before, "wedding_date": f"2027-07-{w % 28 + 1:02d}"},
            )
        elif roll < 0.8:
            change = change_event(
                "form_responses",
                "c",
                lsn=lsn,
                after={
                    "id": f"fr-{lsn}",
                    "supplier_id": f"s-{rng.randrange(WEDDINGS * 2)}",
                    "couple_id": f"c-{w}",
                    "client_name": "Alex & Sam",
                    "form_name": "Wedding day",
                    "question_count": 12,
                },
            )
        else:
            change = change_event(
                "core_fields",
                "u",
                lsn=lsn,
                before={"id": f"cf-{w}", "couple_id": f"c-{w}", "phone": "1"},
                after={"id": f"cf-{w}", "couple_id": f"c-{w}", "phone": "2"},
            )
        out.append(change)
    return out


def _produce(bootstrap: str, codecs: TopicCodecs, events: list[DomainEvent], now: bool) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5,
                         "queue.buffering.max.messages": 1_000_000})  # fmt: skip
    codec = codecs[topics.EVENTS]
    stamp = int(time.time() * 1000)
    encoded = [
        (codec.encode({**e, "source_ts_ms": stamp} if now else e), e["aggregate_id"].encode())
        for e in events
    ]
    for value, key in encoded:  # encoded first: the clock measures routing, not this process
        producer.produce(topics.EVENTS.name, value, key)
    producer.flush(30)


def _committed(consumer: Consumer) -> int:
    """Offsets the routing engine's group committed on wedsync.events (a reused client)."""
    parts = [TopicPartition(topics.EVENTS.name, p) for p in range(topics.EVENTS.partitions)]
    return sum(max(tp.offset, 0) for tp in consumer.committed(parts, timeout=5))


def _baseline(bootstrap: str, codecs: TopicCodecs, state: StateTables, count: int) -> float:
    """The plain loop; seconds to route `count` events already on the topic."""
    import io

    from fastavro import schemaless_writer  # the same library the codec uses, called directly

    rules = load_rules()
    writers = {d: (t.deliver.name, codecs[t.deliver]) for d, t in topics.DELIVER.items()}
    parsed = {
        d: (name, c.registry.lookup(c.schema_id), c._header) for d, (name, c) in writers.items()
    }
    decode = codecs[topics.EVENTS].decode
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench-baseline",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 5, "queue.buffering.max.messages": 2_000_000}
    )
    consumer.assign(
        [TopicPartition(topics.EVENTS.name, p, 0) for p in range(topics.EVENTS.partitions)]
    )
    done, started = 0, time.perf_counter()
    try:
        while done < count:
            msgs = consumer.consume(5000, 1.0)
            now_ms = int(time.time() * 1000)
            for msg in msgs:
                event: Any = decode(msg.value())
                for d in route(event, state, rules, now_ms):
                    name, schema, header = parsed[d.destination]
                    buf = io.BytesIO()
                    buf.write(header)
                    schemaless_writer(buf, schema, d.record)
                    producer.produce(name, buf.getvalue(), d.key.encode())
            done += len(msgs)
            producer.flush(30)
            if msgs:
                consumer.commit(asynchronous=True)
        return time.perf_counter() - started
    finally:
        consumer.close()


def _latency(
    bootstrap: str, codecs: TopicCodecs, events: list[DomainEvent], rate: int
) -> tuple[list[float], list[float]]:
    """Offer `events` at `rate`/s, stamping source_ts_ms at send time. Returns, per delivery,
    ms from source_ts_ms to the output record (its CreateTime, set when the routing process
    produced it; read after the run, so measuring costs the system nothing while it runs),
    and, for the in-app topic only, to the moment a live consumer in this process read it."""
    live_topic = topics.DELIVER[topics.Destination.INAPP].deliver
    live_codec = codecs[live_topic]

    live = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-live-{rate}",
                     "fetch.wait.max.ms": 5})  # fmt: skip
    live.assign([TopicPartition(live_topic.name, p, o) for p, o in _ends(live, live_topic).items()])
    starts = _starts(bootstrap)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    codec = codecs[topics.EVENTS]
    ids = {e["event_id"] for e in events}
    to_read: list[float] = []
    start = time.monotonic()
    sent = 0
    try:
        while sent < len(events) or time.monotonic() - start < len(events) / rate + 3:
            due = min(len(events), int((time.monotonic() - start) * rate) + 1)
            for event in events[sent:due]:
                stamped = {**event, "source_ts_ms": int(time.time() * 1000)}
                producer.produce(
                    topics.EVENTS.name, codec.encode(stamped), event["aggregate_id"].encode()
                )
            sent = due
            producer.poll(0)
            for msg in live.consume(1000, 0.001):
                if not msg.error():
                    record = live_codec.decode(msg.value())
                    if record["event_id"] in ids:
                        to_read.append(time.time() * 1000 - record["source_ts_ms"])
        return _read_outputs(bootstrap, codecs, starts, ids), to_read
    finally:
        live.close()


def _read_outputs(
    bootstrap: str,
    codecs: TopicCodecs,
    starts: dict[tuple[str, int], int],
    ids: set[str],
    timeout: float = 60,
) -> list[float]:
    """Per delivery of an event in `ids` written at or after `starts`: ms from its
    `source_ts_ms` to its output record's CreateTime. Read only after the run: a consumer
    fetching all along would load the broker that the system under test shares."""
    return [routed - source for _, source, routed in _outputs(bootstrap, codecs, starts, ids,
                                                              timeout)]  # fmt: skip


def _outputs(
    bootstrap: str, codecs: TopicCodecs, starts: dict[tuple[str, int], int], ids: set[str],
    timeout: float = 60, events: dict[str, int] | None = None,
) -> list[tuple[str, int, int]]:  # fmt: skip
    """(event id, source_ts_ms, output CreateTime) per delivery of an event in `ids` written
    at or after `starts`; when `events` is given and `starts` names wedsync.events
    partitions, each domain event's CreateTime goes into it by event id."""
    by_topic = {t.deliver.name: codecs[t.deliver] for t in topics.DELIVER.values()}
    domain = codecs[topics.EVENTS]
    out: list[tuple[str, int, int]] = []
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-outputs"})
    consumer.assign([TopicPartition(t, p, o) for (t, p), o in starts.items()])
    deadline, quiet = time.monotonic() + timeout, 0
    try:
        while quiet < 10 and time.monotonic() < deadline:  # 2 s without a delivery: done
            msgs = consumer.consume(10_000, 0.2)
            quiet = 0 if msgs else quiet + 1
            for msg in msgs:
                if msg.error():
                    continue
                if msg.topic() == topics.EVENTS.name:
                    if events is not None:
                        events[domain.decode(msg.value())["event_id"]] = msg.timestamp()[1]
                    continue
                record = by_topic[msg.topic() or ""].decode(msg.value())
                if record["event_id"] in ids:
                    out.append((record["event_id"], record["source_ts_ms"], msg.timestamp()[1]))
        return out
    finally:
        consumer.close()


def _starts(bootstrap: str, *, events: bool = False) -> dict[tuple[str, int], int]:
    """(deliver topic, partition) -> its end offset now; with `events`, wedsync.events's too."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-ends"})
    read = [t.deliver for t in topics.DELIVER.values()] + ([topics.EVENTS] if events else [])
    try:
        return {(t.name, p): high for t in read for p, high in _ends(consumer, t).items()}
    finally:
        consumer.close()


@dataclasses.dataclass
class Hops:
    """Per delivery, ms: row commit -> routed record (`whole`), and its two hops: commit ->
    the domain event the worker wrote (`to_event`, through the CDC record and the Faust
    normalizer), that event -> the routed record (`to_routed`, the routing process)."""

    whole: list[float]
    to_event: list[float]
    to_routed: list[float]

    def line(self) -> str:
        return f"commit -> domain event {_pcts(self.to_event)}; -> routed {_pcts(self.to_routed)}"


def _pipeline(bootstrap: str, codecs: TopicCodecs, changes: list[ChangeEvent], rate: int) -> Hops:
    """Offer row changes at `rate`/s as the CDC source writes them (commit time stamped at
    send; a heartbeat of the last commit on wedsync.ingest.state at most every
    WATERMARK_INTERVAL_S, which routing waits for); per delivery, ms from the commit to the
    output record, and its hops."""
    ids = {e["event_id"] for c in changes for e in normalize_change(c, _REF)}
    starts = _starts(bootstrap, events=True)
    cdc = CdcLike(bootstrap, codecs, linger_ms=5)
    start, sent, next_beat = time.monotonic(), 0, 0.0
    while sent < len(changes):
        due = min(len(changes), int((time.monotonic() - start) * rate) + 1)
        for change in changes[sent:due]:
            now = int(time.time() * 1000)
            cdc.send({**change, "ts_ms": now, "source_ts_ms": now,  # type: ignore[typeddict-item]
                      "source": {**change["source"], "ts_ms": now}})  # fmt: skip
        sent = due
        if time.monotonic() >= next_beat:
            cdc.beat()
            next_beat = time.monotonic() + WATERMARK_INTERVAL_S
        cdc.producer.poll(0.001)
    cdc.flush(30)
    events: dict[str, int] = {}
    outputs = _outputs(bootstrap, codecs, starts, ids, events=events)
    split = [(events[e] - source, routed - events[e]) for e, source, routed in outputs
             if e in events]  # fmt: skip
    return Hops([routed - source for _, source, routed in outputs],
                [a for a, _ in split], [b for _, b in split])  # fmt: skip


def _ends(client: Consumer, topic: topics.Topic) -> dict[int, int]:
    """Partition -> high watermark of `topic` now."""
    return {
        p: client.get_watermark_offsets(TopicPartition(topic.name, p), 5)[1]
        for p in range(topic.partitions)
    }


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@contextlib.contextmanager
def _broker(choice: str) -> Iterator[str]:
    """A fresh development broker: `tansu` (the embedded one) or `kafka` (one KRaft node)."""
    if choice == "tansu":
        with EmbeddedBroker() as broker:
            yield broker.bootstrap_servers
    else:
        with dev_broker(choice) as bootstrap:
            yield bootstrap


@contextlib.contextmanager
def _shipped(
    rng: random.Random, changes: list[ChangeEvent], links: int, broker: str = "tansu"
) -> Iterator[tuple[str, TopicCodecs, Consumer]]:
    """A fresh broker, the routing state loaded through CDC, `wedsync worker` (with its
    routing process) warmed up: yields (bootstrap, codecs, a probe of the route group)."""
    with _broker(broker) as bootstrap:
        create_topics(bootstrap)
        settings = Settings(kafka_bootstrap_servers=bootstrap, app_id="bench-routing")
        codecs = TopicCodecs.from_settings(settings)
        cdc = CdcLike(bootstrap, codecs, linger_ms=5)
        for change in changes:
            cdc.send(change)
        cdc.flush(30)
        with worker_process(bootstrap, settings):
            wait_for_table(  # every vendor link folded into the state rows
                bootstrap,
                topics.app_topics(settings.app_id).state_rows_changelog.name,
                done=lambda table: (
                    sum(1 for k in table if k.startswith("wedding_vendors:")) >= links
                ),
                timeout=120,
            )
            probe = Consumer({"bootstrap.servers": bootstrap,
                              "group.id": f"{settings.app_id}-route"})  # fmt: skip
            # warm-up: clocks start once the routing process has joined its group and
            # routed a first batch (a group join on Tansu takes seconds; that is not routing)
            _produce(bootstrap, codecs, _events(rng, WARMUP, 30_000_000), now=False)
            while _committed(probe) < WARMUP:
                time.sleep(0.05)
            try:
                yield bootstrap, codecs, probe
            finally:
                probe.close()


def run(parts: tuple[str, ...] = PARTS) -> list[str]:
    """Each partition count in a child process (the catalog's count is fixed per process)."""
    lines = []
    for partitions in sorted({1, topics.deployment_partitions()}):
        if partitions == 1:
            lines.append(
                "-- one partition per topic (the issue's setup: one partition, one worker)"
            )
        else:
            lines.append(f"-- {partitions} partitions per topic (WEDSYNC_PARTITIONS, the default)")
        lines += _in_child(partitions, parts)
    return lines


def _in_child(partitions: int, parts: tuple[str, ...] = PARTS) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        result = os.path.join(tmp, "lines.json")
        done = subprocess.run(
            [sys.executable, "-m", "bench.routing", "--child", ",".join(parts), result],
            env={**os.environ, "WEDSYNC_PARTITIONS": str(partitions)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=1200,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{partitions} partitions: exit {done.returncode}\n"
                               f"{done.stderr[-3000:]}")  # fmt: skip
        with open(result) as f:
            lines: list[str] = json.load(f)
            return lines


def _measure(parts: tuple[str, ...] = PARTS) -> list[str]:
    """Every system on a fresh broker: Tansu slows down as its in-memory logs grow, so phases
    that shared one broker would not be comparable."""
    lines = _measure_routing() if "routing" in parts else []
    if "pipeline" in parts:
        lines += _measure_pipeline()
    if "scaling" in parts and topics.EVENTS.partitions > 1:
        lines += _measure_scaling()
    return lines


def _setup() -> tuple[random.Random, list[ChangeEvent], StateTables, int]:
    """The seeded generator, the state changes, the state they fold into, vendor links."""
    rng = random.Random(7)
    changes = _state_changes(rng)
    folded = RoutingState()
    for change in changes:
        folded.apply_change(change)
    state = folded.tables
    return rng, changes, state, sum(len(v) for v in state.wedding_vendors.values())


def _measure_routing() -> list[str]:
    """Throughput against the plain loop, routing latency, pipeline latency (Tansu)."""
    rng = random.Random(7)
    changes = _state_changes(rng)
    folded = RoutingState()
    for change in changes:
        folded.apply_change(change)
    state = folded.tables
    links = sum(len(v) for v in state.wedding_vendors.values())
    events = _events(rng, EVENTS, lsn=10_000_000)
    rules = load_rules()
    fanout = sum(len(route(e, state, rules, 0)) for e in events) / len(events)
    lines = [
        f"{EVENTS} events, {fanout:.1f} deliveries/event on average, "
        f"{WEDDINGS} weddings, {len(state.suppliers)} suppliers"
    ]
    with _shipped(rng, changes, links) as (bootstrap, codecs, probe):
        started = time.perf_counter()
        _produce(bootstrap, codecs, events, now=False)
        while _committed(probe) < WARMUP + EVENTS:
            time.sleep(0.05)
        shipped = time.perf_counter() - started
    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap_servers)
        codecs = TopicCodecs.from_settings(Settings())
        _produce(broker.bootstrap_servers, codecs, events, now=False)
        base = _baseline(broker.bootstrap_servers, codecs, state, EVENTS)
    trials: list[tuple[list[float], list[float], list[float], str]] = []
    pipeline: dict[int, Hops] = {}
    for trial in range(TRIALS):
        with _no_gc():
            floor = _broker_floor(RATE, round(fanout * RATE), LATENCY_SECONDS)
        with _shipped(rng, changes, links) as (bootstrap, codecs, _probe):
            batch = _events(rng, RATE * LATENCY_SECONDS, 20_000_000 + trial * 1_000_000)
            machine = cpu.Machine.now()
            with _no_gc():
                to_output, to_read = _latency(bootstrap, codecs, batch, RATE)
            trials.append((to_output, to_read, floor, _steal(machine)))
            if trial < TRIALS - 1:
                continue
            quarter = _events(rng, RATE // 4 * LATENCY_SECONDS, 40_000_000)
            with _no_gc():
                low_load = _latency(bootstrap, codecs, quarter, RATE // 4)
            _pipeline(bootstrap, codecs, _changes(rng, 100, 50_000_000), 100)  # warm-up
            for rate, lsn in ((RATE // 4, 60_000_000), (RATE, 80_000_000)):
                changes_in = _changes(rng, rate * LATENCY_SECONDS, lsn)
                with _no_gc():
                    pipeline[rate] = _pipeline(bootstrap, codecs, changes_in, rate)
    with _no_gc():
        low_floor = _broker_floor(RATE // 4, round(fanout * RATE // 4), LATENCY_SECONDS)
    a, b = EVENTS / shipped, EVENTS / base
    lines += [
        f"(a) shipped: worker + routing process  {a:>9,.0f} events/s",
        f"(b) plain confluent-kafka loop:        {b:>9,.0f} events/s",
        f"ratio shipped/baseline:                {a / b:>9.2f}  (target >= 0.5)",
        f"routing latency at {RATE} events/s, event produced -> output record, "
        f"{TRIALS} trials, each on a fresh system; the broker floor is measured just before:",
    ]
    for number, (to_output, to_read, floor, steal) in enumerate(trials, 1):
        lines.append(
            f"  trial {number}: {_pcts(to_output)} | read by a consumer (in-app) "
            f"{_pcts(to_read)} | broker floor {_pcts(floor)} | {steal}"
        )
    p99s = sorted(_pct(to_output, 0.99) for to_output, _, _, _ in trials)
    lines += [
        f"  median p99 {p99s[len(p99s) // 2]:.0f} ms (target < 50 ms)",
        f"routing latency at {RATE // 4} events/s: {_pcts(low_load[0])} | read by a consumer "
        f"(in-app) {_pcts(low_load[1])} | broker floor {_pcts(low_floor)}",
    ]
    for rate, hops in pipeline.items():
        target = " (DOMAIN.md: < 100 ms)" if rate == RATE // 4 else ""
        lines.append(
            f"pipeline latency at {rate} changes/s, row commit -> CDC -> normalize (Faust) -> "
            f"route -> output record: {_pcts(hops.whole)}{target}; {hops.line()}"
        )
    return lines


def _measure_pipeline() -> list[str]:
    """The pipeline alone at RATE changes/s on each of PIPELINE_BROKERS, fresh systems."""
    rng, changes, _, links = _setup()
    lines = [f"pipeline at {RATE} changes/s, row commit -> CDC -> normalize (Faust) -> route -> "
             f"routed record, {TRIALS} runs of {LATENCY_SECONDS} s per broker:"]  # fmt: skip
    judged: dict[str, list[float]] = {}
    for broker in PIPELINE_BROKERS:
        with _shipped(rng, changes, links, broker) as (bootstrap, codecs, _probe):
            # Kafka: the JVM's compilers past their first seconds, as deployed
            warm, rate = (RATE * PIPELINE_WARM_S, RATE) if broker == "kafka" else (200, 100)
            _pipeline(bootstrap, codecs, _changes(rng, warm, 50_000_000), rate)
            for trial in range(TRIALS):
                changes_in = _changes(rng, RATE * LATENCY_SECONDS, 90_000_000 + trial * 10**6)
                pids = _pids_of({"worker", "route", "broker"})
                before, machine = _cpu_of(pids), cpu.Machine.now()
                with _no_gc():
                    hops = _pipeline(bootstrap, codecs, changes_in, RATE)
                used = {k: 1000 * (v - before.get(k, 0.0)) / len(changes_in)
                        for k, v in _cpu_of(pids).items()}  # fmt: skip
                judged.setdefault(broker, []).append(_pct(hops.whole, 0.99))
                lines.append(
                    f"  {broker:<5} run {trial + 1}: {_pcts(hops.whole)} | CPU per change: "
                    + ", ".join(f"{k} {v:.2f} ms" for k, v in sorted(used.items()))
                    + f" | {_machine(machine)}"
                )
                lines.append(f"        its hops: {hops.line()}")
    for broker, p99s in judged.items():
        median = sorted(p99s)[len(p99s) // 2]
        verdict = "met" if median < PIPELINE_TARGET_P99_MS else "NOT met"
        lines.append(f"  {broker}: median p99 {median:.0f} ms (target: keeps up at {RATE} "
                     f"changes/s with p99 < {PIPELINE_TARGET_P99_MS} ms: {verdict})")  # fmt: skip
    return lines


def _measure_scaling() -> list[str]:
    """Routed records/s and CPU per routed record with one, then two `wedsync route`
    processes of one group (Apache Kafka), each draining a backlog that saturates one."""
    rng, changes, state, links = _setup()
    rules = load_rules()
    lines = [f"routing scale-out on Apache Kafka, {topics.EVENTS.partitions} partitions, a "
             f"backlog of {SCALE_EVENTS} events each time:"]  # fmt: skip
    rates: list[float] = []
    with _shipped(rng, changes, links, "kafka") as (bootstrap, codecs, probe):
        extra: list[subprocess.Popen[bytes]] = []
        try:
            for processes in (1, 2):
                if processes == 2:
                    extra.append(_route_process(bootstrap, "bench-routing"))
                    _wait_members(bootstrap, "bench-routing-route", 2)
                    warm = _events(rng, WARMUP, 31_000_000)
                    done = _committed(probe)
                    _produce(bootstrap, codecs, warm, now=False)
                    while _committed(probe) < done + WARMUP:
                        time.sleep(0.05)
                backlog = _events(rng, SCALE_EVENTS, 32_000_000 + processes * 10**6)
                routed = sum(len(route(e, state, rules, 0)) for e in backlog)
                pids = _pids_of({"route"})
                before, machine = _cpu_of(pids), cpu.Machine.now()
                start, done = time.perf_counter(), _committed(probe)
                _produce(bootstrap, codecs, backlog, now=False)
                while _committed(probe) < done + SCALE_EVENTS:
                    time.sleep(0.02)
                seconds = time.perf_counter() - start
                used = _cpu_of(pids).get("route", 0.0) - before.get("route", 0.0)
                rates.append(routed / seconds)
                lines.append(
                    f"  {processes} process{'es' if processes > 1 else ''}: "
                    f"{SCALE_EVENTS / seconds:>7,.0f} events/s, {routed / seconds:>7,.0f} routed "
                    f"records/s, CPU {1e6 * used / routed:.0f} us per routed record "
                    f"({100 * used / seconds:.0f}% of a core) | {_machine(machine)}"
                )
        finally:
            for proc in extra:
                proc.terminate()
                proc.wait(15)
    lines.append(f"  ratio 2/1: {rates[1] / rates[0]:.2f} (target >= 1.7 while the machine has "
                 "spare CPU: see idle above)")  # fmt: skip
    return lines


def _route_process(bootstrap: str, app_id: str) -> subprocess.Popen[bytes]:
    """One more `wedsync route` of `app_id`'s group, as the worker's child is started."""
    from streams.child import die_with_parent
    from streams.dev.broker import free_port

    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "WEDSYNC_APP_ID": app_id,
           "WEDSYNC_METRICS_PORT": str(free_port())}  # fmt: skip
    return subprocess.Popen([sys.executable, "-m", "streams.app.cli", "route"], env=env,
                            preexec_fn=die_with_parent)  # fmt: skip


def _wait_members(bootstrap: str, group: str, members: int, timeout: float = 60) -> None:
    """Until the consumer group `group` is stable with `members` members holding partitions."""
    from confluent_kafka import ConsumerGroupState
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = admin.describe_consumer_groups([group])[group].result(10)
        holding = [m for m in found.members if m.assignment.topic_partitions]
        if found.state == ConsumerGroupState.STABLE and len(holding) >= members:
            return
        time.sleep(0.2)
    raise TimeoutError(f"{group}: {members} members did not join in {timeout} s")


_KINDS = {"worker": "worker", "routing": "route", "Kafka": "broker", "Tansu": "broker"}


def _pids_of(kinds: set[str]) -> dict[int, str]:
    """Pid -> kind of this process's descendants of `kinds`: "worker" and "route" (`wedsync
    worker` and its routing process), "broker" (the Apache Kafka or Tansu started here)."""
    found = cpu.processes({os.getpid(): "bench"})
    return {pid: _KINDS[name] for pid, name in found.items() if _KINDS.get(name) in kinds}


def _cpu_of(pids: dict[int, str]) -> dict[str, float]:
    """Kind -> CPU seconds (utime + stime) its processes used so far."""
    out: dict[str, float] = {}
    for pid, kind in pids.items():
        with contextlib.suppress(OSError):  # ended: counts nothing more
            out[kind] = out.get(kind, 0.0) + cpu.process_seconds(pid)
    return out


def _machine(before: cpu.Machine) -> str:
    """How busy the whole machine was since `before` (/proc/stat), every tenant included."""
    shares = cpu.Machine.now().since(before)
    return f"machine {shares.busy:.0%} busy, steal {shares.steal:.0%}"


def _steal(before: cpu.Machine) -> str:
    """Share of this machine's CPU time the hypervisor gave to other guests since `before`
    (the `steal` column of /proc/stat): when it is high, every latency here is inflated."""
    return f"CPU steal {cpu.Machine.now().since(before).steal:.0%}"


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """No collector pauses in this process while it stamps and reads records: a pause here
    would be counted as the system's latency."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def _pcts(values: list[float]) -> str:
    return f"p50 {_pct(values, 0.5):>5.0f} ms  p99 {_pct(values, 0.99):>5.0f} ms"


def _broker_floor(rate: int, out_rate: int, seconds: int) -> list[float]:
    """What the embedded broker alone costs: one-hop produce -> consume latency of `rate`
    msgs/s while `out_rate` msgs/s (the deliveries' volume) are written to 7 other topics,
    no processing at all, on a fresh broker. The routing figures cannot beat this floor."""
    from confluent_kafka.admin import AdminClient, NewTopic

    parts = topics.EVENTS.partitions
    with EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap_servers
        admin = AdminClient({"bootstrap.servers": bootstrap})
        names = ["bench-floor-in", *(f"bench-floor-out-{i}" for i in range(7))]
        for future in admin.create_topics([NewTopic(n, parts, 1) for n in names]).values():
            future.result(30)
        consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": "floor", "fetch.wait.max.ms": 5}
        )
        consumer.assign([TopicPartition(names[0], p, 0) for p in range(parts)])
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        padding = b"x" * 300
        latencies: list[float] = []
        start, sent, out = time.monotonic(), 0, 0
        try:
            while time.monotonic() - start < seconds + 2:
                elapsed = time.monotonic() - start
                due = min(rate * seconds, int(elapsed * rate) + 1)
                for i in range(sent, due):
                    producer.produce(names[0], b"%f" % time.time(), str(i).encode())
                sent = due
                due_out = min(out_rate * seconds, int(elapsed * out_rate) + 1)
                for i in range(out, due_out):
                    producer.produce(names[1 + i % 7], padding, str(i).encode())
                out = due_out
                producer.poll(0)
                for msg in consumer.consume(1000, 0.001):
                    if not msg.error():
                        latencies.append((time.time() - float(msg.value() or b"0")) * 1000)
        finally:
            consumer.close()
            producer.flush(10)
    return latencies


def _main(argv: list[str]) -> int:
    """`python -m bench.routing [--parts routing,pipeline,scaling]`: print those parts;
    `--child PARTS FILE` (what `run()` starts): measure, write the lines to FILE."""
    if argv[:1] == ["--child"]:
        topics.configure(Settings().partitions)  # WEDSYNC_PARTITIONS, this program's edge
        with open(argv[2], "w") as out:
            json.dump(_measure(tuple(argv[1].split(","))), out)
        return 0
    parts = tuple(argv[1].split(",")) if argv[:1] == ["--parts"] else PARTS
    unknown = set(parts) - set(PARTS)
    if unknown:
        print(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}", file=sys.stderr)
        return 2
    for line in run(parts):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
