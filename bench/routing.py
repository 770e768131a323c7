"""Routing throughput and latency: the shipped path against a plain confluent-kafka loop.

Both run on one embedded (Tansu) broker, over the same realistic routing state (suppliers
with channel preferences, wedding vendors, CRM/venue/calendar integrations, customer
webhooks) and the same `EVENTS` domain events (a production-like mix: wedding date changes
fanning out to every vendor, form responses, profile updates, record.changed for webhooks):

(a) shipped: `wedsync worker` as a child process (Faust agents + the routing engine); state
    goes in as CDC, is folded into GlobalTables, then N events are produced and the clock
    stops when the engine's committed offsets reach N (offsets are committed only after the
    deliveries are acked).
(b) baseline: in this process, consume(5000) -> decode -> route (same pure logic, state in
    plain dicts) -> encode (fastavro, pre-parsed schemas) -> produce -> flush -> async commit.

Then (a) at a fixed offered load of 1,000 events/s: end-to-end latency per delivery, from the
event's `source_ts_ms` (set when produced) to the moment this process reads the delivery.
`run()` returns the lines to print.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from streams import topics
from streams.admin import create_topics
from streams.broker import EmbeddedBroker
from streams.changelog_state import changelog_topic_name
from streams.codec import TopicCodecs
from streams.demo import worker_process
from streams.logic.normalize import normalize_change
from streams.logic.routing import load_rules, route
from streams.logic.state import StateTables, apply_change
from streams.models import ChangeEvent, ColumnValue, DomainEvent, SourceRef
from streams.samples import change_event
from streams.settings import Settings
from streams.topics import change_key

WEDDINGS = 300
EVENTS = 12_000
WARMUP = 200
RATE = 1000
LATENCY_SECONDS = 5
_REF = SourceRef(kind="cdc", topic=topics.INGEST_CDC.name, partition=0, offset=0, lsn=None,
                 delivery_id=None, table=None)  # fmt: skip
_CHANNELS = [None, ["email", "inapp"], ["email", "slack", "inapp", "sms"], ["inapp"]]


def _state_changes(rng: random.Random) -> list[ChangeEvent]:
    rows: list[tuple[str, dict[str, Any]]] = []
    for s in range(WEDDINGS * 2):
        prefs = rng.choice(_CHANNELS)
        rows.append(("suppliers", {
            "id": f"s-{s}", "business_name": f"Vendor {s}", "email": f"v{s}@example.com",
            "phone": "+447700900001", "slack_channel_id": f"C{s:05d}",
            "notification_preferences": json.dumps({} if prefs is None else
                                                   {"realtime_channels": prefs}),
        }))  # fmt: skip
        kind = ("photography_crm", "google_calendar", "outlook_calendar")[s % 3]
        rows.append(("supplier_integrations", {"id": f"si-{s}", "supplier_id": f"s-{s}",
                     "integration_type": kind, "webhook_url": "https://crm.example/hook",
                     "calendar_id": f"cal-{s}", "is_active": True}))  # fmt: skip
        if s % 4 == 0:
            rows.append(("webhook_endpoints", {"id": f"we-{s}", "supplier_id": f"s-{s}",
                         "endpoint_url": "https://hooks.example/in",
                         "subscribed_events": json.dumps(["form_responses.insert",
                                                          "wedding_details.update"]),
                         "is_active": True}))  # fmt: skip
    for w in range(WEDDINGS):
        vendors = rng.sample(range(WEDDINGS * 2), 3)
        for i, s in enumerate(vendors):
            rows.append(("wedding_vendors", {"id": f"wv-{w}-{i}", "wedding_id": f"w-{w}",
                         "supplier_id": f"s-{s}", "vendor_type": "photographer"}))  # fmt: skip
        rows.append(("venue_integrations", {"id": f"vi-{w}", "supplier_id": f"s-{vendors[0]}",
                     "api_url": "https://venue.example/api", "is_active": True}))  # fmt: skip
    return [change_event(t, "c", after=row, lsn=i + 1) for i, (t, row) in enumerate(rows)]


def _events(rng: random.Random, count: int, lsn: int) -> list[DomainEvent]:
    out: list[DomainEvent] = []
    while len(out) < count:
        lsn += 1
        w, roll = rng.randrange(WEDDINGS), rng.random()
        if roll < 0.3:
            before: dict[str, ColumnValue] = {
                "id": f"w-{w}",
                "wedding_date": "2027-06-12",
                "venue_name": "Oak Barn",
                "ceremony_time": "14:00",
                "guest_count": 120,
                "time_zone": "Europe/London",
                "client_id": f"c-{w}",
                "partner1_name": "Alex",
                "partner2_name": "Sam",
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
                    "form_id": "f-1",
                    "supplier_id": f"s-{rng.randrange(WEDDINGS * 2)}",
                    "client_id": f"c-{w}",
                    "wedding_id": f"w-{w}",
                    "status": "submitted",
                },
            )
        else:
            change = change_event(
                "core_fields",
                "u",
                lsn=lsn,
                before={
                    "id": f"cf-{w}",
                    "client_id": f"c-{w}",
                    "wedding_id": f"w-{w}",
                    "phone": "1",
                },
                after={
                    "id": f"cf-{w}",
                    "client_id": f"c-{w}",
                    "wedding_id": f"w-{w}",
                    "phone": "2",
                },
            )
        out.extend(normalize_change(change, _REF))
    return out[:count]


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


def _wait_state(bootstrap: str, app_id: str, expected: int, timeout: float = 120) -> None:
    """Until the wedding_vendors changelog holds every vendor link (read, not watermarks)."""
    name = changelog_topic_name(app_id, "wedding_vendors")
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-probe",
                         "topic.metadata.refresh.interval.ms": 500})  # fmt: skip
    consumer.assign([TopicPartition(name, p, 0) for p in range(topics.EVENTS.partitions)])
    table: dict[bytes, int] = {}
    deadline = time.monotonic() + timeout
    try:
        while sum(table.values()) < expected:
            if time.monotonic() > deadline:
                raise TimeoutError(f"state not loaded: {sum(table.values())} of {expected}")
            for msg in consumer.consume(5000, 0.2):
                if not msg.error():
                    table[msg.key() or b""] = len(json.loads(msg.value() or b"{}") or {})
    finally:
        consumer.close()


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
    by_topic = {t.deliver.name: codecs[t.deliver] for t in topics.DELIVER.values()}

    def consumer(group: str, wanted: list[topics.Topic]) -> Consumer:
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "fetch.wait.max.ms": 5})
        parts = []
        for t in wanted:
            for p in range(t.partitions):
                high = c.get_watermark_offsets(TopicPartition(t.name, p), 5)[1]
                parts.append(TopicPartition(t.name, p, high))
        c.assign(parts)
        return c

    live = consumer(f"bench-live-{rate}", [live_topic])
    after = consumer(f"bench-after-{rate}", [t.deliver for t in topics.DELIVER.values()])
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    codec = codecs[topics.EVENTS]
    ids = {e["event_id"] for e in events}
    to_output: list[float] = []
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
                    record = by_topic[live_topic.name].decode(msg.value())
                    if record["event_id"] in ids:
                        to_read.append(time.time() * 1000 - record["source_ts_ms"])
        quiet = 0
        while quiet < 5:  # read every delivery of the run, then stop
            msgs = after.consume(10_000, 0.2)
            quiet = 0 if msgs else quiet + 1
            for msg in msgs:
                if msg.error():
                    continue
                record = by_topic[msg.topic() or ""].decode(msg.value())
                if record["event_id"] in ids:
                    to_output.append(msg.timestamp()[1] - record["source_ts_ms"])
        return to_output, to_read
    finally:
        live.close()
        after.close()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@contextlib.contextmanager
def _shipped(
    rng: random.Random, changes: list[ChangeEvent], links: int
) -> Iterator[tuple[str, TopicCodecs, Consumer]]:
    """A fresh broker, the routing state loaded through CDC, `wedsync worker` (with its
    routing process) warmed up: yields (bootstrap, codecs, a probe of the route group)."""
    with EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap_servers
        create_topics(bootstrap)
        settings = Settings(kafka_bootstrap_servers=bootstrap, app_id="bench-routing")
        codecs = TopicCodecs.from_settings(settings)
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        cdc = codecs[topics.INGEST_CDC]
        for change in changes:
            producer.produce(topics.INGEST_CDC.name, cdc.encode(change), change_key(change))
        producer.flush(30)
        with worker_process(bootstrap, settings):
            _wait_state(bootstrap, settings.app_id, links)
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


def run() -> list[str]:
    """Every phase on a fresh broker: Tansu slows down as its in-memory logs grow, so phases
    that shared one broker would not be comparable."""
    rng = random.Random(7)
    changes = _state_changes(rng)
    state = StateTables.empty()
    for change in changes:
        apply_change(state, change)
    links = sum(len(v) for v in state.wedding_vendors.values())
    events = _events(rng, EVENTS, lsn=10_000_000)
    rules = load_rules()
    fanout = sum(len(route(e, state, rules, 0)) for e in events) / len(events)
    lines = [
        f"routing: {EVENTS} events, {fanout:.1f} deliveries/event on average, "
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
    latencies = {}
    with _shipped(rng, changes, links) as (bootstrap, codecs, _probe):
        for rate, lsn in ((RATE, 20_000_000), (RATE // 4, 40_000_000)):
            batch = _events(rng, rate * LATENCY_SECONDS, lsn)
            latencies[rate] = _latency(bootstrap, codecs, batch, rate)
    a, b = EVENTS / shipped, EVENTS / base
    lines += [
        f"(a) shipped: worker + routing process  {a:>9,.0f} events/s",
        f"(b) plain confluent-kafka loop:        {b:>9,.0f} events/s",
        f"ratio shipped/baseline:                {a / b:>9.2f}  (target >= 0.5)",
    ]
    for rate, (to_output, to_read) in latencies.items():
        target = " (target p99 < 50 ms)" if rate == RATE else ""
        floor = _broker_floor(rate, round(fanout * rate), LATENCY_SECONDS)
        lines += [
            f"latency at {rate} events/s ({len(to_output)} deliveries), source commit ->",
            f"  output record:        p50 {_pct(to_output, 0.5):>6.0f} ms  "
            f"p99 {_pct(to_output, 0.99):>6.0f} ms{target}",
            f"  read by a consumer (in-app topic): p50 {_pct(to_read, 0.5):>4.0f} ms  "
            f"p99 {_pct(to_read, 0.99):>6.0f} ms",
            f"  broker floor (no processing, same message rates, one hop): "
            f"p50 {_pct(floor, 0.5):.0f} ms  p99 {_pct(floor, 0.99):.0f} ms",
        ]
    return lines


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
