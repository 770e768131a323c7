"""The CalDAV feed's fallback from sync-collection to CTag/ETag against a scripted aiohttp
CalDAV endpoint that lacks the REPORT (the way Posteo and GMX answer) and writes the way
iCloud does (default namespace, CDATA, absolute hrefs on another host, inbox and
notification collections among the members); and the failure paths of the CTag/ETag round."""

from __future__ import annotations

import hashlib
import re
import socket
from collections.abc import Iterator

import httpx
import pytest
from aiohttp import web
from connectors.calendar.feed_errors import FetchFailed, Throttled
from streams.dev.fakes.kit import FakeProvider, FakeServer
from streams.logic.calendar.rounds import CalendarRef

from tests.component.calendar.caldav.feed import D, H, by_name, ics, kinds, run

COLLECTION = "/1234/calendars/home/"


class NoSyncCalDav(FakeProvider):
    """A CalDAV collection whose REPORT sync-collection answers `report_status` (403 with
    DAV:supported-report, 405 or 501) but which answers PROPFIND and calendar-multiget, in the
    default namespace, with hrefs on `partition` (another host) and CDATA calendar data."""

    name = "no-sync-caldav"

    def __init__(self) -> None:
        super().__init__()
        self.events: dict[str, str] = {}  # name -> iCalendar text
        self.report_status = 403
        self.partition = "http://localhost:1"  # set once the port is known
        self.omit: set[str] = set()  # names the multiget leaves out of its answer
        self.garbage: str | None = None  # "PROPFIND" or "multiget": a 207 that is not XML
        self.fail_at: int | None = None  # the n-th request (from 1) answers 500

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self.handle)

    def etag(self, name: str) -> str:
        return '"' + hashlib.sha256(self.events[name].encode()).hexdigest()[:12] + '"'

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        injected = self.injected()
        if injected == "throttle":
            return web.Response(status=429, headers={"Retry-After": "7"})
        if injected == "fail":
            return web.Response(status=self.switches.fail_status)
        self.counters["seen"] += 1
        if self.counters["seen"] == self.fail_at:
            return web.Response(status=500)
        kind = "multiget" if b"calendar-multiget" in body else request.method
        if self.garbage == kind:
            return web.Response(status=207, body=b"<<not xml", content_type="text/xml")
        if request.method == "PROPFIND":
            self.counters[f"PROPFIND/{request.headers.get('Depth')}"] += 1
            return self.multistatus(self.listing(request.headers.get("Depth") == "1"))
        if request.method == "REPORT" and b"sync-collection" in body:
            self.counters["sync-collection"] += 1
            error = b'<error xmlns="DAV:"><supported-report/></error>'
            return web.Response(status=self.report_status, body=error)
        if request.method == "REPORT" and b"calendar-multiget" in body:
            self.counters["multiget"] += 1
            names = [
                h.rsplit("/", 1)[-1] for h in re.findall(r"<d:href>([^<]+)</d:href>", body.decode())
            ]
            return self.multistatus("".join(self.data(n) for n in names if n not in self.omit))
        return web.Response(status=405)

    def listing(self, members: bool) -> str:
        ctag = hashlib.sha256("".join(sorted(self.events.values())).encode()).hexdigest()[:8]
        out = self.response(
            COLLECTION,
            f'<getctag xmlns="http://calendarserver.org/ns/">FT=-@RU={ctag}</getctag>'
            "<resourcetype><collection/><calendar xmlns='urn:ietf:params:xml:ns:caldav'/>"
            "</resourcetype>",
        )
        if not members:
            return out
        for sub in ("inbox", "notification"):
            out += self.response(
                f"{COLLECTION}{sub}/",
                '<getetag>"x"</getetag><resourcetype><collection/></resourcetype>',
            )
        for name in self.events:
            out += self.response(
                COLLECTION + name, f"<getetag>{self.etag(name)}</getetag><resourcetype/>"
            )
        return out

    def data(self, name: str) -> str:
        if name not in self.events:
            return (
                f"<response><href>{self.partition}{COLLECTION}{name}</href>"
                "<status>HTTP/1.1 404 Not Found</status></response>"
            )
        return self.response(
            COLLECTION + name,
            f"<getetag>{self.etag(name)}</getetag><calendar-data "
            f"xmlns='urn:ietf:params:xml:ns:caldav'><![CDATA[{self.events[name]}]]></calendar-data>",
        )

    def response(self, path: str, props: str) -> str:
        return (
            f"<response><href>{self.partition}{path}</href><propstat><prop>{props}</prop>"
            "<status>HTTP/1.1 200 OK</status></propstat></response>"
        )

    @staticmethod
    def multistatus(inner: str) -> web.Response:
        text = (
            f'<?xml version="1.0" encoding="UTF-8"?><multistatus xmlns="DAV:">{inner}</multistatus>'
        )
        return web.Response(status=207, body=text.encode(), content_type="text/xml")


@pytest.fixture
def no_sync() -> Iterator[FakeServer]:
    provider = NoSyncCalDav()
    with FakeServer(provider) as server:
        provider.partition = f"http://localhost:{server.port}"  # iCloud's p180-caldav host
        provider.events = {"a.ics": ics("a", 12), "b.ics": ics("b", 13)}
        yield server


def no_sync_calendar(server: FakeServer) -> CalendarRef:
    return CalendarRef("caldav", "int-dav", "sup-1", server.url + COLLECTION, "Europe/London")


@pytest.mark.parametrize("status", [403, 405, 501])
async def test_auto_mode_falls_back_to_etags_where_sync_collection_is_unsupported(
    http: httpx.AsyncClient, no_sync: FakeServer, status: int
) -> None:
    provider: NoSyncCalDav = no_sync.provider  # type: ignore[assignment]
    provider.report_status = status
    got = await run(http, no_sync_calendar(no_sync), None, mode="auto")
    assert got.full and got.cursor.startswith("etag:")
    assert by_name(got) == {
        "a.ics": [(4 * D + 13 * H, "busy")],
        "b.ics": [(5 * D + 13 * H, "busy")],
    }


async def test_auto_mode_falls_back_from_a_stored_sync_token_to_a_full_etag_round(
    http: httpx.AsyncClient, no_sync: FakeServer
) -> None:
    got = await run(http, no_sync_calendar(no_sync), "http://sabre.io/ns/sync/41", mode="auto")
    assert got.full and sorted(by_name(got)) == ["a.ics", "b.ics"]


async def test_after_the_fallback_an_unchanged_calendar_costs_one_propfind(
    http: httpx.AsyncClient, no_sync: FakeServer, sent: list[httpx.Request]
) -> None:
    calendar = no_sync_calendar(no_sync)
    first = await run(http, calendar, None, mode="auto")
    sent.clear()
    second = await run(http, calendar, first.cursor, mode="auto")
    assert kinds(sent) == ["PROPFIND/0"] and second.changes == ()


async def test_after_the_fallback_a_new_and_a_deleted_event_are_the_changes(
    http: httpx.AsyncClient, no_sync: FakeServer
) -> None:
    provider: NoSyncCalDav = no_sync.provider  # type: ignore[assignment]
    calendar = no_sync_calendar(no_sync)
    first = await run(http, calendar, None, mode="auto")
    provider.events = {"a.ics": provider.events["a.ics"], "c.ics": ics("c", 15)}
    second = await run(http, calendar, first.cursor, mode="auto")
    assert by_name(second) == {"b.ics": None, "c.ics": [(7 * D + 13 * H, "busy")]}
    assert provider.counters["sync-collection"] == 1  # only the first round probed it


async def test_sync_mode_on_a_server_without_sync_collection_fails(
    http: httpx.AsyncClient, no_sync: FakeServer
) -> None:
    with pytest.raises(FetchFailed):
        await run(http, no_sync_calendar(no_sync), None, mode="sync")


async def test_sync_mode_reads_supported_report_with_a_token_as_unsupported_not_expired(
    http: httpx.AsyncClient, no_sync: FakeServer
) -> None:
    with pytest.raises(FetchFailed, match="no sync-collection"):  # a resync would loop
        await run(http, no_sync_calendar(no_sync), "http://sabre.io/ns/sync/41", mode="sync")


async def test_a_member_the_multiget_left_out_is_read_next_round(
    http: httpx.AsyncClient, no_sync: FakeServer
) -> None:
    provider: NoSyncCalDav = no_sync.provider  # type: ignore[assignment]
    calendar = no_sync_calendar(no_sync)
    provider.omit = {"b.ics"}
    first = await run(http, calendar, None)
    assert list(by_name(first)) == ["a.ics"]
    provider.omit = set()
    assert list(by_name(await run(http, calendar, first.cursor))) == ["b.ics"]


async def test_a_throttled_listing_is_throttled_with_its_retry_after(
    http: httpx.AsyncClient, no_sync: FakeServer
) -> None:
    no_sync.provider.switches.throttle_next = 1
    with pytest.raises(Throttled) as raised:
        await run(http, no_sync_calendar(no_sync), None)
    assert raised.value.retry_after_s == 7.0


@pytest.mark.parametrize("step", [1, 2, 3])  # PROPFIND 0, PROPFIND 1, the multiget
async def test_a_server_error_at_any_step_is_fetch_failed(
    http: httpx.AsyncClient, no_sync: FakeServer, step: int
) -> None:
    provider: NoSyncCalDav = no_sync.provider  # type: ignore[assignment]
    provider.fail_at = step
    with pytest.raises(FetchFailed, match=r"caldav\.500"):
        await run(http, no_sync_calendar(no_sync), None)


@pytest.mark.parametrize("kind", ["PROPFIND", "multiget"])
async def test_an_answer_that_is_not_a_multistatus_is_fetch_failed(
    http: httpx.AsyncClient, no_sync: FakeServer, kind: str
) -> None:
    provider: NoSyncCalDav = no_sync.provider  # type: ignore[assignment]
    provider.garbage = kind
    with pytest.raises(FetchFailed, match="not XML"):
        await run(http, no_sync_calendar(no_sync), None)


async def test_a_refused_connection_is_fetch_failed(http: httpx.AsyncClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = CalendarRef("caldav", "int-dav", "sup-1", f"http://127.0.0.1:{port}/c/", "UTC")
    with pytest.raises(FetchFailed, match="ConnectError"):
        await run(http, closed, None)
