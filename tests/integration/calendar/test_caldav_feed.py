"""A vendor's own CalDAV calendar (Radicale, for real) feeds double-booking detection, end to
end on real Kafka. A recurring series whose EXDATE removes the occurrence on the wedding day
but whose moved occurrence (RECURRENCE-ID) lands on the booking is exactly one conflict, for
the vendor and the couple; an expired sync token (Radicale's valid-sync-token) makes a full
resync that raises nothing again; deleting the series resolves the conflict."""

from __future__ import annotations

import httpx
import pytest
from streams.dev.fakes.caldav import RadicaleServer

from tests.integration.calendar.conftest import CALDAV_PASSWORD as PASSWORD
from tests.integration.calendar.conftest import CALDAV_USER as USER
from tests.integration.calendar.conftest import caldav_calendar
from tests.integration.calendar.pipeline import EndToEnd
from tests.integration.calendar.support import wait

pytestmark = pytest.mark.integration

SERIES = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//vendor//EN\r\n"
    "BEGIN:VEVENT\r\nUID:yoga\r\nDTSTAMP:20270101T000000Z\r\nSUMMARY:Yoga class\r\n"
    "DTSTART;TZID=Europe/London:20270610T130000\r\nDTEND;TZID=Europe/London:20270610T140000\r\n"
    "RRULE:FREQ=DAILY;COUNT=5\r\nEXDATE;TZID=Europe/London:20270612T130000\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:yoga\r\nDTSTAMP:20270101T000000Z\r\nSUMMARY:Yoga class\r\n"
    "RECURRENCE-ID;TZID=Europe/London:20270611T130000\r\n"
    "DTSTART;TZID=Europe/London:20270612T160000\r\nDTEND;TZID=Europe/London:20270612T170000\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)


def test_a_vendors_caldav_series_feeds_the_double_booking_detector(
    e2e: EndToEnd,
    radicale: tuple[RadicaleServer, str],
) -> None:
    _, collection = radicale
    auth = (USER, PASSWORD)
    endpoints = caldav_calendar(collection, {"yoga.ics": SERIES})
    with e2e.pipeline(endpoints) as run:
        run.reader.read_until(lambda _: run.both <= run.sent("booking.conflict_detected"), 120)
        assert run.count("booking.conflict_detected") == 1  # the moved one; the EXDATE'd none

        mark, rounds = len(run.reader.records), run.feed.rounds
        expired = "http://radicale.org/ns/sync/" + "0" * 64  # a token Radicale no longer has

        def expire() -> None:
            run.feed.sync[run.key].cursor = expired

        run.thread.call(expire)
        wait(lambda: run.feed.rounds > rounds and run.feed.sync[run.key].cursor != expired, 60)
        assert httpx.delete(collection + "yoga.ics", auth=auth).status_code in (200, 204)
        run.reader.read_until(lambda _: run.both <= run.sent("booking.conflict_resolved", mark), 60)
        assert run.count("booking.conflict_detected", mark) == 0  # the resync alerted nobody
