"""A vendor's own Google Calendar feeds double-booking detection, end to end on real Kafka:
the platform schema and CDC, the worker with routing, the ingest gateway verifying the
channel pushes by their MAC, the calendar feed with its watch channel against the Google
fake. A private event over a platform booking reaches the vendor and the couple as a
conflict, with nothing of the event in any delivery; the vendor moving it away (a push)
resolves the conflict; an event whose push Google drops is found by the reconcile; a full
resync after Google refuses the sync token raises no new alert."""

from __future__ import annotations

import json
from typing import Any

import httpx
import psycopg2
import pytest
from confluent_kafka import Producer
from connectors.sinks.credentials import PostgresCredentialStore
from streams import topics
from streams.dev.demo import worker_process
from streams.dev.fakes.google import GoogleCalendarFake
from streams.dev.scenario import ids, seed
from streams.kafka.codec import TopicCodecs
from streams.settings import Settings

from tests.component.agents.harness import booking_changed
from tests.integration.agents_support import DeliveryReader
from tests.integration.calendar.conftest import GOOGLE_SOURCES, vendor_calendar, vendor_token
from tests.integration.calendar.support import FeedThread, wait
from tests.integration.cdc_support import PlatformDb

pytestmark = pytest.mark.integration

REFRESH = "1//vendor-refresh-token"


def vendor_edit(
    base: str, method: str, path: str = "", body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The vendor, in Google Calendar itself (the same account, another OAuth client)."""
    token = vendor_token(base, REFRESH)
    url = f"{base}/calendar/v3/calendars/primary/events{path}"
    answer = httpx.request(method, url, json=body, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code < 300, answer.text
    return answer.json() if answer.content else {}


def private(start: str, end: str) -> dict[str, Any]:
    return {"summary": "Private family shoot", "description": "not for the couple",
            "start": {"dateTime": start}, "end": {"dateTime": end}}  # fmt: skip


def sent(reader: DeliveryReader, event_type: str, since: int = 0) -> set[tuple[str, str]]:
    return {
        (dest.value, r["recipient_id"])
        for dest, r in reader.records[since:]
        if r["event_type"] == event_type
    }


def test_a_vendors_google_calendar_feeds_the_double_booking_detector(
    platform: PlatformDb,
    kafka_bootstrap: str,
    settings: Settings,
    codecs: TopicCodecs,
    google: tuple[GoogleCalendarFake, str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, base, gateway_port = google
    monkeypatch.setenv("WEDSYNC_CALENDAR_FEED_RECONCILE_MIN", "0.1")  # 6 s: the safety net
    k = ids()
    conn = psycopg2.connect(platform.dsn)
    conn.autocommit = True
    seed(conn.cursor(), k, vendor_calendar("google_calendar", REFRESH))
    shoot = vendor_edit(
        base, "POST", body=private("2027-06-12T13:00:00+01:00", "2027-06-12T15:00:00+01:00")
    )
    cdc = platform.start_cdc(kafka_bootstrap, codecs)
    reader = DeliveryReader(kafka_bootstrap, codecs)
    feed_thread = FeedThread(
        settings, kafka_bootstrap, PostgresCredentialStore(platform.dsn),
        gateway_sources=GOOGLE_SOURCES,
        gateway_port=gateway_port,
    )  # fmt: skip
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    vendor = {("email", k["photo"]), ("slack", k["photo"]), ("inapp", k["photo"])}
    both = vendor | {("inapp", k["couple"])}
    feed = None

    def report() -> str:  # what the feed and the fake hold, when a step times out
        if feed is None:
            return "feed not started"
        sync = {k2: (s.cursor, s.status, s.failures, s.channels) for k2, s in feed.sync.items()}
        got = [(d.value, r["event_type"]) for d, r in reader.records]
        return repr({"rounds": feed.rounds, "push_live": feed.push_live, "sync": sync,
                     "fake": dict(fake.counters), "deliveries": got})  # fmt: skip

    try:
        with worker_process(kafka_bootstrap, settings) as worker:
            booking_id = f"bk-{k['photo']}"  # ids unique per test: routing drops a seen one
            booking = booking_changed(booking_id, "2027-06-12T12:00", "2027-06-12T18:00",
                                      supplier=k["photo"], client=k["couple"])  # fmt: skip
            value = codecs[topics.EVENTS].encode(booking)
            producer.produce(topics.EVENTS.name, value, booking_id.encode())
            producer.flush(10)
            feed = feed_thread.start()
            wait(
                lambda: any(c.calendar.supplier_id == k["photo"] for c in feed.calendars.values()),
                60,
            )
            key = next(
                k2 for k2, c in feed.calendars.items() if c.calendar.supplier_id == k["photo"]
            )

            # 1. the private event over the booking: a conflict for the vendor and the couple
            reader.read_until(lambda _: both <= sent(reader, "booking.conflict_detected"), 120)
            text = json.dumps([r for _, r in reader.records], default=str)
            assert "Private family shoot" not in text and "not for the couple" not in text

            # 2. the channel is live; the vendor moves the event away: its push resolves it
            wait(lambda: key in feed.push_live, 60)
            vendor_edit(
                base,
                "PATCH",
                f"/{shoot['id']}",
                private("2027-06-13T13:00:00+01:00", "2027-06-13T15:00:00+01:00"),
            )
            reader.read_until(lambda _: both <= sent(reader, "booking.conflict_resolved"), 60)

            # 3. a new private event whose push Google drops: the reconcile finds it
            mark = len(reader.records)
            fake.channels.drop_next_notifications = 1
            vendor_edit(
                base, "POST", body=private("2027-06-12T16:00:00+01:00", "2027-06-12T17:00:00+01:00")
            )
            reader.read_until(lambda _: both <= sent(reader, "booking.conflict_detected", mark), 60)

            # 4. Google refuses the sync token: the full resync raises nothing again
            mark = len(reader.records)
            rounds = feed.rounds
            fake.sync.invalidate_sync_tokens()
            feed_thread.call(lambda: feed.push(key))
            wait(lambda: feed.rounds > rounds, 60)
            vendor_edit(base, "DELETE", f"/{shoot['id']}")  # a change after the resync: pushed
            wait(lambda: feed.rounds > rounds + 1, 60)
            reader.read_until(lambda _: True, 5)
            assert sent(reader, "booking.conflict_detected", mark) == set()
            assert worker.poll() is None
    except AssertionError as exc:
        raise AssertionError(f"{exc}; {report()}") from exc
    finally:
        feed_thread.stop()
        reader.close()
        cdc.stop()
        conn.close()
