"""The platform's real schema in, the right deliveries out.

A throwaway database with `schemas/platform/platform.sql` (uuid ids, jsonb preferences written
as the platform writes them, `subscribed_events text[]`, `wedding_vendors.vendor_id`,
`venue_integrations.venue_id` + `api_credentials`), the real CDC source, the worker and the
routing process on the real broker. The four workflows of DOMAIN.md are played as SQL, and
every delivery the rules and preferences imply is asserted per recipient and channel, with no
secret in any record.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import psycopg2
import pytest
from confluent_kafka import Consumer, TopicPartition
from streams import topics
from streams.dev.demo import worker_process
from streams.dev.scenario import SECRETS, VENDORS, expected, ids, play, seed
from streams.errors import BrokerUnavailable
from streams.kafka.codec import TopicCodecs
from streams.routing.state_reader import ChangelogState
from streams.settings import Settings

from tests.integration.agents_support import DeliveryReader
from tests.integration.cdc_support import PlatformDb
from tests.pg import wait_until

pytestmark = pytest.mark.integration


def test_four_workflows_on_the_platform_schema_reach_every_recipient_and_channel(
    platform: PlatformDb,
    kafka_bootstrap: str,
    settings: Settings,
    codecs: TopicCodecs,
) -> None:
    k = ids()
    conn = psycopg2.connect(platform.dsn)
    conn.autocommit = True
    cur = conn.cursor()
    seed(cur, k)
    cdc = platform.start_cdc(kafka_bootstrap, codecs)
    reader = DeliveryReader(kafka_bootstrap, codecs)
    ours = {k[n] for n in VENDORS}
    want = expected(k)
    try:
        with worker_process(kafka_bootstrap, settings) as worker:
            play(cur, k)
            reader.read_until(lambda got: want <= _kinds(got, ours), timeout=120)
            assert worker.poll() is None
    finally:
        reader.close()
        cdc.stop()
        conn.close()
    got = _kinds(reader.records, ours)
    assert got == want
    records = [r for _, r in reader.records if r.get("recipient_id") in ours]
    assert not any(r["recipient_id"] == "None" or r.get("user_id") == "None" for r in records)
    _assert_payloads(records, k)
    _assert_no_secret(kafka_bootstrap)


def _loaded(bootstrap: str, app_id: str, readers: list[ChangelogState]) -> bool:
    """Open the routing state as a routing process does, once the worker has made its
    changelog (a client that asked before the topic existed keeps not seeing it)."""
    reader = ChangelogState(bootstrap, app_id)
    try:
        reader.load(timeout=30)
    except BrokerUnavailable:
        reader.close()
        return False
    readers.append(reader)
    return True


def _state_report(bootstrap: str, app_id: str, reader: ChangelogState, counts: object) -> str:
    """What the reader holds against what the changelog and its input hold (for a failure)."""
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{app_id}-probe"})
    try:
        changelog = topics.app_topics(app_id).state_rows_changelog.name
        ends = {name: probe.get_watermark_offsets(TopicPartition(name, 0), 5)
                for name in (changelog, topics.INGEST_STATE.name)}  # fmt: skip
        group = Consumer({"bootstrap.servers": bootstrap, "group.id": app_id})
        committed = group.committed([TopicPartition(topics.INGEST_STATE.name, 0)], timeout=5)
        group.close()
    finally:
        probe.close()
    return (
        f"counts {counts}; reader applied {reader.applied} records, watermark "
        f"{reader.watermark}; (low, high) {ends}; worker group committed {committed}"
    )


def _kinds(records: list[tuple[Any, dict[str, Any]]], ours: set[str]) -> set[tuple[str, str, str]]:
    return {
        (r["event_type"], dest.value, r["recipient_id"])
        for dest, r in records
        if r.get("recipient_id") in ours
    }


def _assert_payloads(records: list[dict[str, Any]], k: dict[str, str]) -> None:
    crm = {r["crm_kind"]: r for r in records if r["event_type"] == "wedding.date_changed"
           and "crm_kind" in r}  # fmt: skip
    photo, venue = crm["photography_crm"]["payload"], crm["venue_booking"]["payload"]
    assert (photo["wedding_id"], photo["client_name"], photo["wedding_date"]) == (
        k["wedding"], "Alex & Sam", "2027-06-19",
    )  # fmt: skip
    assert (photo["venue_name"], photo["guest_count"]) == ("Oak Barn", 120)
    assert (venue["booking_id"], venue["event_date"], venue["party_size"]) == (
        k["wedding"], "2027-06-19", 120,
    )  # fmt: skip
    assert venue["special_requirements"] == "step-free access"
    assert crm["venue_booking"]["endpoint_url"] == "https://venue.example/bookings"
    # the platform stores wall-clock times and no zone: the CRM and the venue get them as
    # stored, the calendar its local times, placed in the calendar's own zone by its sink
    assert (photo["ceremony_time"], venue["setup_time"]) == ("14:00:00", "10:00:00")
    (calendar,) = [r for r in records if "calendar_id" in r]
    assert calendar["calendar_id"] == "photo@group.example"
    assert (calendar["local_start"], calendar["time_zone"]) == ("2027-06-19T14:00:00", None)
    hooks = sorted(r["event_name"] for r in records if "event_name" in r)
    assert hooks == ["form_responses.insert", "wedding_details.update"]
    sms = [r for r in records if "to_number" in r]
    assert [(r["to_number"], r["event_type"]) for r in sms] == [
        ("+447700900222", "wedding.date_changed")
    ]


def _assert_no_secret(bootstrap: str) -> None:
    """No secret column value in any record of the ingest, event or deliver topics."""
    names = [topics.INGEST_CDC.name, topics.INGEST_STATE.name, topics.EVENTS.name] + [
        t.deliver.name for t in topics.DELIVER.values()
    ]
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "secret-scan",
                         "enable.auto.commit": False})  # fmt: skip
    parts = [TopicPartition(n, p, 0) for n in names for p in range(topics.topic(n).partitions)]
    consumer.assign(parts)
    ends = {(n, p): consumer.get_watermark_offsets(TopicPartition(n, p), 10)[1]
            for n in names for p in range(topics.topic(n).partitions)}  # fmt: skip
    seen: dict[tuple[str, int], int] = {}
    try:
        while any(seen.get(tp, 0) < end for tp, end in ends.items() if end):
            for msg in consumer.consume(1000, 1.0):
                if msg.error():
                    continue
                tp = (msg.topic() or "", msg.partition() or 0)
                seen[tp] = (msg.offset() or 0) + 1
                value = msg.value() or b""
                for secret in SECRETS:
                    assert secret.encode() not in value, f"{secret} in {tp}"
    finally:
        consumer.close()


def test_two_workers_lose_no_concurrent_state_update(
    platform: PlatformDb,
    kafka_bootstrap: str,
    settings: Settings,
    codecs: TopicCodecs,
) -> None:
    dsn = platform.dsn
    conn = psycopg2.connect(platform.dsn)
    conn.autocommit = True
    cur = conn.cursor()
    suppliers, weddings = (
        [str(uuid.uuid4()) for _ in range(4)],
        [str(uuid.uuid4()) for _ in range(3)],
    )
    for s in suppliers:
        cur.execute("INSERT INTO suppliers (id, business_name) VALUES (%s, 'V')", (s,))
    for w in weddings:
        cur.execute(
            "INSERT INTO wedding_details (id, couple_id) VALUES (%s, %s)", (w, str(uuid.uuid4()))
        )
    cdc = platform.start_cdc(kafka_bootstrap, codecs)
    per_writer = 40

    def writer(n: int) -> None:
        with psycopg2.connect(dsn) as own, own.cursor() as c:
            own.autocommit = True
            for i in range(per_writer):
                s, w = suppliers[(n + i) % 4], weddings[(n * 7 + i) % 3]
                c.execute("INSERT INTO wedding_vendors (wedding_id, vendor_id) VALUES (%s, %s)",
                          (w, s))  # fmt: skip
                c.execute("INSERT INTO webhook_endpoints (supplier_id, endpoint_url, secret_key, "
                          "subscribed_events) VALUES (%s, 'https://h.example', 'k', "
                          "'{form_responses.insert}')", (s,))  # fmt: skip
                c.execute("INSERT INTO supplier_integrations (supplier_id, integration_type, "
                          "webhook_url) VALUES (%s, 'photography_crm', 'https://c.example')",
                          (s,))  # fmt: skip

    readers: list[ChangelogState] = []
    try:
        with worker_process(kafka_bootstrap, settings) as first, \
                worker_process(kafka_bootstrap, settings) as second:  # fmt: skip
            threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            total = 4 * per_writer
            assert wait_until(lambda: _loaded(kafka_bootstrap, settings.app_id, readers), 60)
            reader = readers[0]

            def counts() -> tuple[int, int, int]:
                tables = reader.tables
                return (
                    sum(len(tables.wedding_vendors.get(w) or {}) for w in weddings),
                    sum(len(tables.webhook_endpoints.get(s) or {}) for s in suppliers),
                    sum(len(tables.integrations.get(s) or {}) for s in suppliers),
                )

            seen = wait_until(lambda: counts() == (total, total, total), timeout=120)
            assert seen, _state_report(kafka_bootstrap, settings.app_id, reader, counts())
            assert first.poll() is None and second.poll() is None
    finally:
        for reader in readers:
            reader.close()
        cdc.stop()
        conn.close()
