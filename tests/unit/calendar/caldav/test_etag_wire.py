"""connectors.calendar.caldav.etag_wire: PROPFIND listings and the etag cursor."""

from __future__ import annotations

import json

import pytest
from connectors.calendar.caldav import etag_wire

BASE = "https://caldav.icloud.com/1234/calendars/home/"
HOME = "/1234/calendars/home"


def ok(href: str, props: str) -> str:
    return (
        f"<D:response><D:href>{href}</D:href><D:propstat><D:prop>{props}</D:prop>"
        "<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>"
    )


def listing(*responses: str) -> bytes:
    return (
        '<?xml version="1.0"?><D:multistatus xmlns:D="DAV:" '
        'xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:CS="http://calendarserver.org/ns/">'
        + "".join(responses)
        + "</D:multistatus>"
    ).encode()


def event(href: str, etag: str = '"e1"', content_type: str = "text/calendar") -> str:
    return ok(
        href,
        f"<D:getetag>{etag}</D:getetag><D:resourcetype/>"
        f"<D:getcontenttype>{content_type}</D:getcontenttype>",
    )


COLLECTION = ok(
    HOME + "/",
    '<CS:getctag>"c7"</CS:getctag><D:sync-token>tok-3</D:sync-token>'
    "<D:resourcetype><D:collection/><C:calendar/></D:resourcetype>",
)


def test_the_collection_itself_gives_the_version_and_is_no_member() -> None:
    got = etag_wire.parse_listing(listing(COLLECTION, event(HOME + "/a.ics")), BASE)
    assert got.version == '"c7"' and list(got.etags) == [HOME + "/a.ics"]


def test_without_a_ctag_the_sync_token_is_the_version() -> None:
    bare = ok(HOME + "/", "<D:sync-token>tok-3</D:sync-token>")
    assert etag_wire.parse_listing(listing(bare), BASE).version == "tok-3"


def test_without_ctag_or_sync_token_there_is_no_version() -> None:
    missing = (
        f"<D:response><D:href>{HOME}/</D:href><D:propstat><D:prop><CS:getctag/><D:sync-token/>"
        "</D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat></D:response>"
    )
    assert etag_wire.parse_listing(listing(missing), BASE).version is None


@pytest.mark.parametrize("kind", ["inbox", "outbox", "notification"])
def test_icloud_sub_collections_are_skipped(kind: str) -> None:
    sub = ok(
        f"{HOME}/{kind}/",
        '<D:getetag>"x"</D:getetag><D:resourcetype><D:collection/>'
        f'<CS:{kind} xmlns:CS="http://calendarserver.org/ns/"/></D:resourcetype>',
    )
    assert etag_wire.parse_listing(listing(COLLECTION, sub), BASE).etags == {}


def test_a_member_that_is_not_icalendar_is_skipped() -> None:
    note = event(HOME + "/attachment.png", content_type="image/png")
    assert etag_wire.parse_listing(listing(note), BASE).etags == {}


def test_a_member_without_an_etag_is_skipped() -> None:
    untagged = ok(HOME + "/a.ics", "<D:resourcetype/>")
    assert etag_wire.parse_listing(listing(untagged), BASE).etags == {}


def test_a_member_outside_the_collection_is_skipped() -> None:
    stray = event("/1234/calendars/work/a.ics")
    assert etag_wire.parse_listing(listing(stray), BASE).etags == {}


def test_an_icloud_listing_in_the_default_namespace_on_a_partition_host() -> None:
    body = (
        '<?xml version="1.0"?><multistatus xmlns="DAV:"><response>'
        f"<href>https://p180-caldav.icloud.com:443{HOME}/</href><propstat><prop>"
        '<getctag xmlns="http://calendarserver.org/ns/">FT=-@RU=1</getctag>'
        "<resourcetype><collection/></resourcetype></prop><status>HTTP/1.1 200 OK</status>"
        "</propstat></response><response>"
        f"<href>https://p180-caldav.icloud.com:443{HOME}/A%20B.ics</href><propstat><prop>"
        '<getetag>"lx3"</getetag><resourcetype/></prop><status>HTTP/1.1 200 OK</status>'
        "</propstat></response></multistatus>"
    ).encode()
    got = etag_wire.parse_listing(body, BASE)
    assert got.version == "FT=-@RU=1"
    assert got.etags == {HOME + "/A B.ics": etag_wire.digest('"lx3"')}
    assert got.hrefs[HOME + "/A B.ics"].startswith("https://p180-caldav.icloud.com")


@pytest.mark.parametrize("body", [b"<<", b'<?xml version="1.0"?><error xmlns="DAV:"/>'])
def test_an_answer_that_is_not_a_multistatus_is_a_value_error(body: bytes) -> None:
    with pytest.raises(ValueError):
        etag_wire.parse_listing(body, BASE)


def test_changes_are_new_and_changed_ids_and_vanished_ones() -> None:
    got = etag_wire.parse_listing(
        listing(
            event(HOME + "/same.ics", '"1"'),
            event(HOME + "/new.ics"),
            event(HOME + "/chg.ics", '"3"'),
        ),
        BASE,
    )
    old = {
        HOME + "/same.ics": etag_wire.digest('"1"'),
        HOME + "/chg.ics": etag_wire.digest('"2"'),
        HOME + "/gone.ics": etag_wire.digest('"4"'),
    }
    assert etag_wire.changes(old, got) == (
        [HOME + "/new.ics", HOME + "/chg.ics"],
        [HOME + "/gone.ics"],
    )


def test_a_cursor_round_trips_and_is_compact_json_after_its_prefix() -> None:
    state = etag_wire.EtagState('"c7"', {HOME + "/a.ics": etag_wire.digest('"e1"')})
    text = etag_wire.cursor(state)
    assert text.startswith("etag:") and " " not in text.split(HOME)[0]
    assert json.loads(text[5:]) == {"ctag": '"c7"', "etags": state.etags}
    assert etag_wire.read_cursor(text) == state


def test_a_cursor_without_a_version_round_trips() -> None:
    state = etag_wire.EtagState(None, {})
    assert etag_wire.read_cursor(etag_wire.cursor(state)) == state


@pytest.mark.parametrize(
    "value",
    [
        None,
        "http://radicale.org/ns/sync/" + "0" * 64,
        "HwoQEgwAAAh",
        "etag:",
        "etag:{broken",
        'etag:["ctag"]',
        'etag:{"ctag":7,"etags":{}}',
        'etag:{"ctag":"c","etags":{"a":1}}',
        'etag:{"ctag":"c"}',
    ],
)
def test_a_sync_token_or_a_malformed_cursor_reads_as_no_state(value: str | None) -> None:
    assert etag_wire.read_cursor(value) is None


def test_only_the_prefix_tells_the_cursor_kinds_apart() -> None:
    assert etag_wire.is_cursor("etag:{}") and not etag_wire.is_cursor("http://x/sync/1")
    assert not etag_wire.is_cursor(None)
