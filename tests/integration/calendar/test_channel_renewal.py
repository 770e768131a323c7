"""Push channels close to expiry are renewed without a gap, end to end on real Kafka.

Google: a watch channel close to expiry is renewed without a gap:
the Google fake caps channel lifetimes at a few seconds, so the feed's channel pass (every
second) makes a successor at half-life and stops the old channel once the successor's `sync`
came through the real gateway. At every instant since the first channel was made, one
channel of the calendar was live; a vendor change right after the renewal is pushed on the
new channel and reaches the vendor and the couple as a conflict; a late push on the stopped
channel is answered 200 by the gateway and breaks nothing (the next change still resolves
the conflict).

Graph: the fake caps subscription lifetimes likewise; the feed renews the subscription in
place (PATCH expirationDateTime) at half-life, again and again: past its first expiry it is
the same subscription, it never lapsed, and a change then still reaches the detector."""

from __future__ import annotations

import time
from typing import Any

import pytest
from streams.dev.fakes.calendar_kit import owner_of
from streams.dev.fakes.google import GoogleCalendarFake
from streams.dev.fakes.google_channels import WatchChannel
from streams.dev.fakes.graph import GraphFake

from tests.integration.calendar.conftest import GOOGLE_SOURCES, GRAPH_SOURCES, vendor_calendar
from tests.integration.calendar.pipeline import EndToEnd
from tests.integration.calendar.support import wait

pytestmark = pytest.mark.integration

REFRESH = "1//vendor-refresh-renewal"
GRAPH_REFRESH = "M.R3_vendor-graph-renewal"
TTL_S = 12  # renewed at about half-life: 6 s of margin for the successor's sync


def private(start: str, end: str) -> dict[str, Any]:
    return {"summary": "Private family shoot", "start": {"dateTime": start},
            "end": {"dateTime": end}}  # fmt: skip


def holes(lifetimes: list[tuple[str, int, int | None]], until_ms: int) -> list[tuple[int, int]]:
    """The spans between the first channel's creation and `until_ms` with no live channel."""
    out: list[tuple[int, int]] = []
    covered = min(made for _, made, _ in lifetimes)
    for _, made, ended in sorted(lifetimes, key=lambda life: life[1]):
        if made > covered:
            out.append((covered, made))
        covered = max(covered, until_ms if ended is None else ended)
    if covered < until_ms:
        out.append((covered, until_ms))
    return out


def test_an_expiring_google_channel_is_renewed_without_a_gap_and_the_new_one_carries_changes(
    e2e: EndToEnd,
    google: tuple[GoogleCalendarFake, str, int],
) -> None:
    fake, _, port = google
    fake.channels.max_ttl_s = TTL_S
    owner = owner_of(REFRESH)
    endpoints = vendor_calendar("google_calendar", REFRESH)
    with e2e.pipeline(endpoints,
                  gateway_sources=GOOGLE_SOURCES, gateway_port=port) as run:  # fmt: skip

        def ours() -> list[WatchChannel]:  # the fake also serves the session's other vendors
            return [c for c in list(fake.channels.history) if c.owner == owner]

        # the first channel is replaced: a successor made, the old one stopped (channels.stop)
        wait(lambda: len(ours()) >= 2 and ours()[0].stopped_ms is not None, 60)
        old, new = ours()[0], ours()[1]
        assert old.stopped_ms is not None and old.stopped_ms < old.expiration_ms
        assert new.created_ms < old.stopped_ms  # the successor first
        wait(lambda: run.key in run.feed.push_live, 10)

        # a change right after the renewal: pushed on the new channel, a conflict
        live = fake.channels.live_for(owner, "primary")
        shoot = fake.vendor_upsert(owner, "primary", private(
            "2027-06-12T13:00:00+01:00", "2027-06-12T15:00:00+01:00"))  # fmt: skip
        run.reader.read_until(lambda _: run.both <= run.sent("booking.conflict_detected"), 60)
        carried = {p["channel"] for p in list(fake.channels.pushes)
                   if p["state"] == "exists" and p.get("status") == 200}  # fmt: skip
        assert carried & {c.id for c in live}
        assert old.id not in carried

        # a late push on the stopped channel: answered 200, nothing breaks
        pushes = len(fake.channels.pushes)
        fake.channels.push_late(old.id)
        wait(lambda: any(p["channel"] == old.id and "status" in p
                         for p in fake.channels.pushes[pushes:]), 30)  # fmt: skip
        late = next(p for p in fake.channels.pushes[pushes:] if p["channel"] == old.id)
        assert late["status"] == 200
        mark = len(run.reader.records)
        fake.vendor_upsert(owner, "primary", {"id": shoot, **private(
            "2027-06-13T13:00:00+01:00", "2027-06-13T15:00:00+01:00")})  # fmt: skip
        run.reader.read_until(lambda _: run.both <= run.sent("booking.conflict_resolved", mark), 60)

        # never a moment without a live channel, over every renewal so far
        lifetimes = fake.channels.lifetimes(owner, "primary")
        assert len(lifetimes) >= 2
        assert holes(lifetimes, fake.channels.now_ms()) == []


def test_an_expiring_graph_subscription_is_renewed_in_place_and_keeps_carrying_changes(
    e2e: EndToEnd,
    graph: tuple[GraphFake, int],
) -> None:
    fake, port = graph
    fake.hub.max_lifetime_s = TTL_S
    owner = fake.owner_of(GRAPH_REFRESH)
    with e2e.pipeline(vendor_calendar("outlook_calendar", GRAPH_REFRESH),
                  gateway_sources=GRAPH_SOURCES, gateway_port=port) as run:  # fmt: skip
        wait(lambda: run.key in run.feed.push_live, 60)
        ((_, made, _),) = fake.hub.lifetimes(owner)
        first_expiry = made + TTL_S * 1000

        # past the expiry it was first granted: renewed (PATCH), the same one, still live
        wait(lambda: fake.hub.lifetimes(owner)[0][2] is not None
             or time.time() * 1000 > first_expiry + 1000, 60)  # fmt: skip
        assert fake.counters["subscriptions_renewed"] >= 1
        ((_, _, ended),) = fake.hub.lifetimes(owner)
        assert ended is None

        # a change then: notified on the renewed subscription, a conflict
        fake.vendor_upsert(owner, "primary", {
            "subject": "Dentist", "showAs": "busy", "isAllDay": False,
            "start": {"dateTime": "2027-06-12T14:00:00", "timeZone": "Europe/London"},
            "end": {"dateTime": "2027-06-12T15:30:00", "timeZone": "Europe/London"},
        })  # fmt: skip
        run.reader.read_until(lambda _: run.both <= run.sent("booking.conflict_detected"), 60)
        lifetimes = fake.hub.lifetimes(owner)
        assert len(lifetimes) == 1 and lifetimes[0][2] is None  # never made again, never lapsed
        assert holes(lifetimes, int(time.time() * 1000)) == []
