"""connectors.calendar.caldav.fetch_wire: sync-collection answers as servers write them
(Radicale's prefixed XML, iCloud's default namespace, CDATA and partition-host hrefs)."""

from __future__ import annotations

import pytest
from connectors.calendar.caldav import fetch_wire
from streams.logic.calendar.rounds import CalendarRef

BASE = "https://caldav.icloud.com/1234/calendars/home/"
CAL = CalendarRef("caldav", "int-dav", "sup-1", BASE, "Europe/London")
JUNE = 1_812_412_800_000  # 2027-06-08T00:00:00Z
H = 3_600_000
D = 24 * H
WINDOW = (JUNE - 30 * D, JUNE + 400 * D)
ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Apple//EN\r\nBEGIN:VEVENT\r\nUID:a\r\n"
    "DTSTAMP:20270101T000000Z\r\nSUMMARY:Private <dinner> & more\r\n"
    "DTSTART:20270612T130000Z\r\nDTEND:20270612T170000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def prefixed(*responses: str, token: str | None = "http://radicale.org/ns/sync/t2") -> bytes:
    sync = f"<D:sync-token>{token}</D:sync-token>" if token is not None else ""
    return (
        '<?xml version="1.0"?><D:multistatus xmlns:D="DAV:" '
        'xmlns:C="urn:ietf:params:xml:ns:caldav">' + "".join(responses) + sync + "</D:multistatus>"
    ).encode()


def member(href: str, etag: str = '"e1"', data: str | None = None) -> str:
    body = f"<C:calendar-data>{data}</C:calendar-data>" if data is not None else ""
    return (
        f"<D:response><D:href>{href}</D:href><D:propstat><D:prop><D:getetag>{etag}</D:getetag>"
        f"{body}</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>"
    )


def test_a_404_member_is_a_removed_resource() -> None:
    gone = (
        "<D:response><D:href>/1234/calendars/home/x.ics</D:href>"
        "<D:status>HTTP/1.1 404 Not Found</D:status></D:response>"
    )
    (only,) = fetch_wire.parse_multistatus(prefixed(gone), BASE).members
    assert (only.status, only.etag, only.calendar_data) == (404, None, None)


def test_the_answer_carries_the_new_sync_token() -> None:
    answer = fetch_wire.parse_multistatus(prefixed(member("/1234/calendars/home/a.ics")), BASE)
    assert answer.token == "http://radicale.org/ns/sync/t2" and not answer.truncated


def test_507_on_the_request_uri_is_a_truncated_answer_not_a_member() -> None:
    truncated = (
        "<D:response><D:href>/1234/calendars/home/</D:href>"
        "<D:status>HTTP/1.1 507 Insufficient Storage</D:status></D:response>"
    )
    answer = fetch_wire.parse_multistatus(
        prefixed(member("/1234/calendars/home/a.ics"), truncated), BASE
    )
    assert answer.truncated and [m.href for m in answer.members] == [BASE + "a.ics"]


def test_an_answer_without_a_token_says_so() -> None:
    assert fetch_wire.parse_multistatus(prefixed(token=None), BASE).token is None


def test_a_member_with_only_a_404_propstat_for_data_keeps_its_etag_and_no_data() -> None:
    split = (
        "<D:response><D:href>a.ics</D:href>"
        '<D:propstat><D:prop><D:getetag>"e9"</D:getetag></D:prop>'
        "<D:status>HTTP/1.1 200 OK</D:status></D:propstat>"
        "<D:propstat><D:prop><C:calendar-data/></D:prop>"
        "<D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>"
        "</D:response>"
    )
    (only,) = fetch_wire.parse_multistatus(prefixed(split), BASE).members
    assert (only.status, only.etag, only.calendar_data) == (200, '"e9"', None)


def test_calendar_data_in_cdata_is_read_as_text() -> None:
    body = prefixed(member("/1234/calendars/home/a.ics", data=f"<![CDATA[{ICS}]]>"))
    (only,) = fetch_wire.parse_multistatus(body, BASE).members
    assert (
        only.calendar_data is not None and "SUMMARY:Private <dinner> & more" in only.calendar_data
    )
    (observed,) = fetch_wire.observe_ics(only.calendar_data, CAL, WINDOW)
    assert (observed.start_ms - JUNE, observed.end_ms - JUNE) == (4 * D + 13 * H, 4 * D + 17 * H)


def test_xml_in_the_default_namespace_reads_like_prefixed_xml() -> None:
    body = (
        b'<?xml version="1.0"?><multistatus xmlns="DAV:"><response>'
        b'<href>/1234/calendars/home/a.ics</href><propstat><prop><getetag>"e1"</getetag>'
        b'<calendar-data xmlns="urn:ietf:params:xml:ns:caldav">BEGIN:VCALENDAR</calendar-data>'
        b"</prop><status>HTTP/1.1 200 OK</status></propstat></response>"
        b"<sync-token>HwoQEgwAAAh</sync-token></multistatus>"
    )
    answer = fetch_wire.parse_multistatus(body, BASE)
    (only,) = answer.members
    assert (only.etag, only.calendar_data, answer.token) == (
        '"e1"',
        "BEGIN:VCALENDAR",
        "HwoQEgwAAAh",
    )


def test_an_absolute_href_on_a_partition_host_names_the_same_resource_as_a_path() -> None:
    absolute = "https://p180-caldav.icloud.com:443/1234/calendars/home/a%20b.ics"
    answer = fetch_wire.parse_multistatus(
        prefixed(member(absolute), member("/1234/calendars/home/a b.ics")), BASE
    )
    ids = {fetch_wire.resource_id(m.href) for m in answer.members}
    assert ids == {"/1234/calendars/home/a b.ics"}
    assert answer.members[0].href == absolute  # kept as given: the multiget sends its path


def test_the_request_uri_on_a_partition_host_is_still_the_collection() -> None:
    truncated = (
        "<D:response><D:href>https://p180-caldav.icloud.com/1234/calendars/home</D:href>"
        "<D:status>HTTP/1.1 507 Insufficient Storage</D:status></D:response>"
    )
    answer = fetch_wire.parse_multistatus(prefixed(truncated), BASE)
    assert answer.truncated and answer.members == ()


def test_a_relative_href_is_resolved_against_the_collection() -> None:
    (only,) = fetch_wire.parse_multistatus(prefixed(member("a.ics")), BASE).members
    assert only.href == BASE + "a.ics"


@pytest.mark.parametrize("body", [b"not xml <", b'<?xml version="1.0"?><html/>'])
def test_an_answer_that_is_not_a_multistatus_is_a_value_error(body: bytes) -> None:
    with pytest.raises(ValueError):
        fetch_wire.parse_multistatus(body, BASE)


def test_the_multiget_body_names_paths_of_absolute_hrefs() -> None:
    body = fetch_wire.multiget_body(["https://p180-caldav.icloud.com/1234/calendars/home/a&b.ics"])
    assert b"<d:href>/1234/calendars/home/a&amp;b.ics</d:href>" in body


@pytest.mark.parametrize(
    ("status", "body", "had_token", "refused"),
    [
        (403, b"<D:error><D:valid-sync-token/></D:error>", False, True),
        (409, b"<D:error><D:valid-sync-token/></D:error>", True, True),
        (403, b"", True, True),  # iCloud: a bare 403 to a token-bearing REPORT
        (403, b"", False, False),
        (403, b"<D:error><D:supported-report/></D:error>", True, False),
        (409, b"", True, False),
        (500, b"valid-sync-token", True, False),
    ],
)
def test_token_refused(status: int, body: bytes, had_token: bool, refused: bool) -> None:
    assert fetch_wire.token_refused(status, body, had_token) is refused


@pytest.mark.parametrize(
    ("status", "body", "unsupported"),
    [
        (405, b"", True),
        (501, b"", True),
        (403, b"<D:error><D:supported-report/></D:error>", True),
        (403, b"<D:error><D:valid-sync-token/></D:error>", False),
        (400, b"", False),
    ],
)
def test_report_unsupported(status: int, body: bytes, unsupported: bool) -> None:
    assert fetch_wire.report_unsupported(status, body) is unsupported
