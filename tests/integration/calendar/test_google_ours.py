"""Our own events in a vendor's Google Calendar, end to end on real Kafka: the wedding the
platform put in the calendar (routing's calendar delivery, written by the real Google sink)
overlaps a booking but is an echo, never a conflict; the vendor moving it in Google is
drift, told to the vendor; Google refusing the refresh token (`invalid_grant`) marks the
calendar re-auth required and tells the vendor."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from connectors.calendar.google.config import GoogleConfig
from connectors.calendar.google.sink import GoogleCalendarConnector
from connectors.sinks.base import DeliveryContext
from connectors.sinks.credentials import MemoryCredentialStore
from connectors.sinks.outbound import OutboundPolicy
from pydantic import SecretStr
from streams.dev.fakes.google import GoogleCalendarFake
from streams.topics import Destination

from tests.integration.calendar.conftest import APP, GOOGLE_SOURCES, vendor_calendar, vendor_token
from tests.integration.calendar.pipeline import EndToEnd
from tests.integration.calendar.support import wait

pytestmark = pytest.mark.integration

REFRESH = "1//vendor-refresh-ours"


async def sink_writes(base: str, record: dict[str, Any]) -> None:
    """The Google calendar sink delivers routing's calendar record (as `wedsync sink
    calendar` would)."""
    config = GoogleConfig(client_id=APP["client_id"], client_secret=SecretStr(APP["client_secret"]),
                          token_url=f"{base}/token", api_base_url=base)  # fmt: skip
    sink = GoogleCalendarConnector(OutboundPolicy.loopback_for_tests(base), config)
    store = MemoryCredentialStore({("integration", record["integration_id"]): {"api_key": REFRESH}})
    try:
        answer = await sink.deliver(record, DeliveryContext(store, record["delivery_id"], 0))
        assert answer.ok, answer
    finally:
        await sink.aclose()


def test_our_event_is_an_echo_a_vendors_move_is_drift_and_invalid_grant_tells_the_vendor(
    e2e: EndToEnd,
    google: tuple[GoogleCalendarFake, str, int],
) -> None:
    import asyncio

    fake, base, port = google
    endpoints = vendor_calendar("google_calendar", REFRESH)
    sources = GOOGLE_SOURCES
    booking = ("2027-06-13T09:00", "2027-06-13T23:00")  # over the moved wedding's ceremony
    with e2e.pipeline(endpoints, booking,
                  gateway_sources=sources, gateway_port=port) as run:  # fmt: skip
        wait(lambda: run.key in run.feed.push_live, 60)
        cur = run.extra["conn"].cursor()
        cur.execute("UPDATE wedding_details SET wedding_date = '2027-06-13' WHERE id = %s",
                    (run.k["wedding"],))  # fmt: skip

        def ours(records: list[tuple[Destination, dict[str, Any]]]) -> list[dict[str, Any]]:
            return [
                r
                for d, r in records
                if d is Destination.CALENDAR
                and r["event_type"] == "wedding.date_changed"
                and r["recipient_id"] == run.k["photo"]
            ]  # fmt: skip  (the topic is shared)

        run.reader.read_until(lambda records: ours(records), 120)
        rounds = run.feed.rounds
        record = ours(run.reader.records)[0]
        written = (record["integration_id"], record["external_event_id"])
        wait(lambda: written in run.feed.owned.by_external, 30)  # the feed read routing's record
        asyncio.run(sink_writes(base, record))
        wait(lambda: run.feed.rounds > rounds, 60)  # the sink's write was pushed and fetched
        run.reader.read_until(lambda _: True, 3)
        assert run.count("booking.conflict_detected") == 0  # our wedding over the booking

        mark = len(run.reader.records)
        (event,) = fake.stats()["events"]
        token = vendor_token(base, REFRESH)
        moved = {"start": {"dateTime": "2027-06-13T16:00:00+01:00"},
                 "end": {"dateTime": "2027-06-13T19:00:00+01:00"}}  # fmt: skip
        answer = httpx.patch(f"{base}/calendar/v3/calendars/primary/events/{event['id']}",
                             json=moved, headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert answer.status_code == 200
        photo = run.k["photo"]
        run.reader.read_until(
            lambda _: ("inapp", photo) in run.sent("calendar.drift_detected", mark), 60
        )
        assert run.count("booking.conflict_detected", mark) == 0  # drift is no busy time

        fake.switches.revoke_refresh = True
        fake.switches.expire_tokens = True
        run.thread.call(lambda: run.feed.push(run.key))
        run.reader.read_until(
            lambda _: ("inapp", photo) in run.sent("calendar.protection_degraded", mark), 60
        )
        assert run.feed.sync[run.key].status == "reauth_required"
