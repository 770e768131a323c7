"""Two calendar feeds, one active: the second is a hot standby in the leader group, end to end
on real Kafka with a CalDAV calendar (Radicale). While the first holds the lease only it
runs rounds (the standby has built no feed at all); once the first stops, the standby takes
over and a vendor change still reaches the detector (the conflict resolved)."""

from __future__ import annotations

import httpx
import pytest
from confluent_kafka.admin import AdminClient
from connectors.calendar.feed.leader import leader_group
from connectors.sinks.credentials import PostgresCredentialStore
from streams.dev.fakes.caldav import RadicaleServer

from tests.integration.calendar.conftest import CALDAV_PASSWORD, CALDAV_USER, caldav_calendar
from tests.integration.calendar.pipeline import EndToEnd
from tests.integration.calendar.support import FeedThread, wait

pytestmark = pytest.mark.integration

ON_THE_WEDDING_DAY = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//vendor//EN\r\n"
    "BEGIN:VEVENT\r\nUID:shoot\r\nDTSTAMP:20270101T000000Z\r\nSUMMARY:Private shoot\r\n"
    "DTSTART;TZID=Europe/London:20270612T130000\r\nDTEND;TZID=Europe/London:20270612T150000\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)


def members(bootstrap: str, group: str) -> int:
    """How many processes are in the consumer group now."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    (future,) = admin.describe_consumer_groups([group], request_timeout=10).values()
    return len(future.result().members)


def test_a_second_feed_stands_by_until_the_active_one_stops_then_takes_over(
    e2e: EndToEnd,
    radicale: tuple[RadicaleServer, str],
) -> None:
    _, collection = radicale
    auth = (CALDAV_USER, CALDAV_PASSWORD)
    event = collection + "shoot.ics"
    endpoints = caldav_calendar(collection, {"shoot.ics": ON_THE_WEDDING_DAY})
    with e2e.pipeline(endpoints) as run:
        standby = FeedThread(e2e.settings, e2e.bootstrap, PostgresCredentialStore(e2e.platform.dsn))
        standby.launch()
        try:
            group = leader_group(e2e.settings.app_id)
            wait(lambda: members(e2e.bootstrap, group) == 2, 60)

            # only the active feed runs rounds: it keeps polling, the standby built no feed
            run.reader.read_until(lambda _: run.both <= run.sent("booking.conflict_detected"), 120)
            rounds = run.feed.rounds
            wait(lambda: run.feed.rounds > rounds, 30)
            assert standby.feeds == [] and standby.error is None

            # the active feed stops: the standby takes over, a change still gets through
            run.thread.stop()
            wait(lambda: members(e2e.bootstrap, group) == 1, 30)
            wait(lambda: standby.feeds and any(c.calendar.supplier_id == run.k["photo"]
                                               for c in standby.feeds[0].calendars.values()),
                 60)  # fmt: skip
            mark = len(run.reader.records)
            assert httpx.delete(event, auth=auth).status_code in (200, 204)
            run.reader.read_until(
                lambda _: run.both <= run.sent("booking.conflict_resolved", mark), 60
            )
            assert standby.feeds[0].rounds > 0 and len(standby.feeds) == 1
        finally:
            standby.stop()
        assert standby.error is None
