"""An all-day event a vendor marked free on a wedding day is only a softer notice, end to end
on real Kafka (Graph fake, gateway, feed, worker, routing): `booking.conflict_possible` to
the vendor, nothing to the couple, no double-booking alert; the vendor then marking the
same day busy is the real conflict, for the vendor and the couple."""

from __future__ import annotations

import pytest
from streams.dev.fakes.graph import GraphFake

from tests.integration.calendar.conftest import GRAPH_SOURCES, vendor_calendar
from tests.integration.calendar.pipeline import EndToEnd

pytestmark = pytest.mark.integration

REFRESH = "M.R3_vendor-graph-refresh-soft"


def day_off(show_as: str, event_id: str | None = None) -> dict:
    event = {
        "subject": "Family day", "showAs": show_as, "isAllDay": True,
        "start": {"dateTime": "2027-06-12T00:00:00", "timeZone": "Europe/London"},
        "end": {"dateTime": "2027-06-13T00:00:00", "timeZone": "Europe/London"},
    }  # fmt: skip
    return event if event_id is None else {**event, "id": event_id}


def test_an_all_day_free_event_is_a_soft_notice_to_the_vendor_only(
    e2e: EndToEnd, graph: tuple[GraphFake, int]
) -> None:
    fake, port = graph
    owner = fake.owner_of(REFRESH)
    event_id = fake.vendor_upsert(owner, "primary", day_off("free"))
    endpoints = vendor_calendar("outlook_calendar", REFRESH)
    with e2e.pipeline(endpoints, gateway_sources=GRAPH_SOURCES, gateway_port=port) as run:
        vendor = ("email", run.k["photo"])
        run.reader.read_until(lambda _: vendor in run.sent("booking.conflict_possible"), 120)
        assert run.count("booking.conflict_possible") == 0  # the couple is not told
        assert run.sent("booking.conflict_detected") & run.both == set()  # other tests' aside

        mark = len(run.reader.records)
        fake.vendor_upsert(owner, "primary", day_off("busy", event_id))
        run.reader.read_until(lambda _: run.both <= run.sent("booking.conflict_detected", mark), 60)
        assert run.count("booking.conflict_detected", mark) == 1
