"""A vendor's own Google Calendar feeds double-booking detection, end to end on real Kafka:
the platform schema and CDC, the worker with routing, the calendar feed against the Google
fake. A private event over a platform booking reaches the vendor and the couple as a
conflict; deleting it resolves the conflict; a resync after Google refuses the sync token
raises no new alert."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg2
import pytest
from confluent_kafka import Producer
from connectors.sinks.credentials import PostgresCredentialStore
from streams import topics
from streams.dev.demo import worker_process
from streams.dev.fakes.google import GoogleCalendarFake
from streams.dev.fakes.kit import FakeServer
from streams.dev.scenario import Endpoints, ids, seed
from streams.kafka.codec import TopicCodecs
from streams.settings import Settings

from tests.component.agents.harness import booking_changed
from tests.integration.agents_support import DeliveryReader
from tests.integration.calendar.support import FeedThread, wait
from tests.integration.cdc_support import PlatformDb

pytestmark = pytest.mark.integration

REFRESH = "1//vendor-refresh-token"


@pytest.fixture
def google(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[GoogleCalendarFake, str]]:
    fake = GoogleCalendarFake(client_id="app", client_secret="app-secret")
    with FakeServer(fake) as server:
        for name, value in {
            "WEDSYNC_GOOGLE_CLIENT_ID": "app",
            "WEDSYNC_GOOGLE_CLIENT_SECRET": "app-secret",
            "WEDSYNC_GOOGLE_TOKEN_URL": f"{server.url}/token",
            "WEDSYNC_GOOGLE_API_BASE_URL": server.url,
            "WEDSYNC_CALENDAR_FEED_DEBOUNCE_MS": "100",
            "WEDSYNC_CALENDAR_FEED_MAX_DEBOUNCE_MS": "500",
            "WEDSYNC_CALENDAR_FEED_CALENDARS_EVERY_S": "0.5",
        }.items():
            monkeypatch.setenv(name, value)
        yield fake, server.url


def vendor_edit(
    base: str, method: str, path: str = "", body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The vendor, in Google Calendar itself (the same account, another OAuth client)."""
    token = httpx.post(
        f"{base}/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": REFRESH,
            "client_id": "app",
            "client_secret": "app-secret",
        },
    ).json()["access_token"]
    answer = httpx.request(
        method,
        f"{base}/calendar/v3/calendars/primary/events{path}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code < 300, answer.text
    return answer.json() if answer.content else {}


def conflict_deliveries(reader: DeliveryReader, event_type: str) -> set[tuple[str, str]]:
    return {
        (dest.value, r["recipient_id"])
        for dest, r in reader.records
        if r["event_type"] == event_type
    }


def test_a_private_google_event_over_a_booking_alerts_vendor_and_couple_and_deleting_it_resolves(
    platform: PlatformDb,
    kafka_bootstrap: str,
    settings: Settings,
    codecs: TopicCodecs,
    google: tuple[GoogleCalendarFake, str],
) -> None:
    fake, base = google
    k = ids()
    conn = psycopg2.connect(platform.dsn)
    conn.autocommit = True
    seed(conn.cursor(), k, Endpoints(
        calendar_type="google_calendar", calendar_secret=REFRESH,
        calendar_settings={"calendar_id": "primary", "time_zone": "Europe/London"},
    ))  # fmt: skip
    private = vendor_edit(base, "POST", body={
        "summary": "Private family shoot", "description": "not for the couple",
        "start": {"dateTime": "2027-06-12T13:00:00+01:00"},
        "end": {"dateTime": "2027-06-12T15:00:00+01:00"},
    })  # fmt: skip
    cdc = platform.start_cdc(kafka_bootstrap, codecs)
    reader = DeliveryReader(kafka_bootstrap, codecs)
    feed_thread = FeedThread(settings, kafka_bootstrap, PostgresCredentialStore(platform.dsn))
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    try:
        with worker_process(kafka_bootstrap, settings) as worker:
            booking = booking_changed(
                "bk-1",
                "2027-06-12T12:00",
                "2027-06-12T18:00",
                supplier=k["photo"],
                client=k["couple"],
            )
            producer.produce(topics.EVENTS.name, codecs[topics.EVENTS].encode(booking), b"bk-1")
            producer.flush(10)
            feed = feed_thread.start()
            vendor_channels = {("email", k["photo"]), ("slack", k["photo"]), ("inapp", k["photo"])}
            reader.read_until(
                lambda _: (
                    {("inapp", k["couple"])} | vendor_channels
                    <= conflict_deliveries(reader, "booking.conflict_detected")
                ),
                timeout=120,
            )
            text = json.dumps([r for _, r in reader.records], default=str)
            assert "Private family shoot" not in text and "not for the couple" not in text

            fake.sync.invalidate_sync_tokens()  # Google: the token expired -> a full resync
            key = next(iter(feed.calendars))
            rounds = feed.rounds
            feed_thread.call(lambda: feed.push(key))
            wait(lambda: feed.rounds > rounds, 60)
            before = len(reader.records)

            vendor_edit(base, "DELETE", f"/{private['id']}")
            feed_thread.call(lambda: feed.push(key))
            reader.read_until(
                lambda _: (
                    ("inapp", k["couple"])
                    in conflict_deliveries(reader, "booking.conflict_resolved")
                ),
                timeout=60,
            )
            new_alerts = [
                r
                for _, r in reader.records[before:]
                if r["event_type"] == "booking.conflict_detected"
            ]
            assert new_alerts == []  # the resync raised nothing again
            assert worker.poll() is None
    finally:
        feed_thread.stop()
        reader.close()
        cdc.stop()
        conn.close()
