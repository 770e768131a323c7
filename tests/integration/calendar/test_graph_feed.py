"""A vendor's own Outlook calendar (the Graph fake) feeds double-booking detection, end to
end on real Kafka, through the gateway: the feed's subscription passes Graph's validation
handshake at the gateway, the vendor's private event over a booking is a conflict for the
vendor and the couple, an evicted delta token (syncStateNotFound) makes a full resync that
raises nothing again, and deleting the event (a notification) resolves the conflict."""

from __future__ import annotations

import pytest
from streams.dev.fakes.graph import GraphFake

from tests.integration.calendar.conftest import GRAPH_SOURCES, vendor_calendar
from tests.integration.calendar.pipeline import EndToEnd
from tests.integration.calendar.support import wait

pytestmark = pytest.mark.integration

REFRESH = "M.R3_vendor-graph-refresh"


def test_a_vendors_outlook_calendar_feeds_the_double_booking_detector(
    e2e: EndToEnd,
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
    with e2e.pipeline(endpoints,
                  gateway_sources=GRAPH_SOURCES, gateway_port=port) as run:  # fmt: skip
        run.reader.read_until(lambda _: run.both <= run.sent("booking.conflict_detected"), 120)
        wait(lambda: run.key in run.feed.push_live, 60)  # the subscription passed the handshake

        mark, rounds = len(run.reader.records), run.feed.rounds
        fake.forget_sync_state()
        run.thread.call(lambda: run.feed.push(run.key))
        wait(lambda: run.feed.rounds > rounds, 60)
        fake.vendor_delete(owner, "primary", event)  # Graph notifies the subscription
        run.reader.read_until(lambda _: run.both <= run.sent("booking.conflict_resolved", mark), 60)
        assert run.count("booking.conflict_detected", mark) == 0
