"""A vendor's own Outlook calendar (the Graph fake) feeds double-booking detection, end to
end on real Kafka, through the gateway: the feed's subscription passes Graph's validation
handshake at the gateway, the vendor's private event over a booking is a conflict for the
vendor and the couple, an evicted delta token (syncStateNotFound) makes a full resync that
raises nothing again, and deleting the event (a notification) resolves the conflict."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from streams.dev.broker import free_port
from streams.dev.fakes.graph import GraphFake
from streams.dev.fakes.kit import FakeServer
from streams.kafka.codec import TopicCodecs
from streams.settings import Settings

from tests.integration.calendar.conftest import vendor_calendar
from tests.integration.calendar.pipeline import pipeline
from tests.integration.calendar.support import wait
from tests.integration.cdc_support import PlatformDb

pytestmark = pytest.mark.integration

REFRESH = "M.R3_vendor-graph-refresh"
KEY = "graph-channel-key-0123456789abcdef"


@pytest.fixture
def graph(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[GraphFake, int]]:
    fake = GraphFake(client_id="app", client_secret="app-secret")
    port = free_port()
    with FakeServer(fake) as server:
        for name, value in {
            "WEDSYNC_GRAPH_CLIENT_ID": "app",
            "WEDSYNC_GRAPH_CLIENT_SECRET": "app-secret",
            "WEDSYNC_GRAPH_TOKEN_URL": f"{server.url}/common/oauth2/v2.0/token",
            "WEDSYNC_GRAPH_API_BASE_URL": server.url,
            "WEDSYNC_CALENDAR_FEED_DEBOUNCE_MS": "100",
            "WEDSYNC_CALENDAR_FEED_MAX_DEBOUNCE_MS": "500",
            "WEDSYNC_CALENDAR_FEED_CALENDARS_EVERY_S": "0.5",
            "WEDSYNC_CALENDAR_FEED_CHANNELS_EVERY_S": "1",
            "WEDSYNC_CALENDAR_FEED_CHANNEL_KEYS": json.dumps([KEY]),
            "WEDSYNC_CALENDAR_FEED_GRAPH_PUSH_URL": f"http://127.0.0.1:{port}/webhooks/outlook",
        }.items():
            monkeypatch.setenv(name, value)
        yield fake, port


def test_a_vendors_outlook_calendar_feeds_the_double_booking_detector(
    platform: PlatformDb,
    kafka_bootstrap: str,
    settings: Settings,
    codecs: TopicCodecs,
    graph: tuple[GraphFake, int],
) -> None:
    fake, port = graph
    owner = fake.owner_of(REFRESH)
    event = fake.vendor_upsert(owner, "primary", {
        "subject": "Dentist", "showAs": "busy", "isAllDay": False,
        "start": {"dateTime": "2027-06-12T14:00:00", "timeZone": "Europe/London"},
        "end": {"dateTime": "2027-06-12T15:30:00", "timeZone": "Europe/London"},
    })  # fmt: skip
    endpoints = vendor_calendar("outlook_calendar", REFRESH)
    sources = {"outlook": {"method": "graph_client_state", "channel_keys": [KEY]}}
    with pipeline(platform, kafka_bootstrap, settings, codecs, endpoints,
                  gateway_sources=sources, gateway_port=port) as run:  # fmt: skip
        run.reader.read_until(lambda _: run.both <= run.sent("booking.conflict_detected"), 120)
        wait(lambda: run.key in run.feed.push_live, 60)  # the subscription passed the handshake

        mark, rounds = len(run.reader.records), run.feed.rounds
        fake.forget_sync_state()
        run.thread.call(lambda: run.feed.push(run.key))
        wait(lambda: run.feed.rounds > rounds, 60)
        fake.vendor_delete(owner, "primary", event)  # Graph notifies the subscription
        run.reader.read_until(lambda _: run.both <= run.sent("booking.conflict_resolved", mark), 60)
        assert run.count("booking.conflict_detected", mark) == 0
