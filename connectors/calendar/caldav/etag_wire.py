"""CalDAV's CTag/ETag feed path on the wire, as pure functions (CALENDAR_SYNC.md §2.3, §5.3 step 4).

The fallback for servers without a working RFC 6578 sync-collection (python-caldav's table:
fragile on DAViCal, SOGo, Synology, Bedework; unsupported on Posteo, GMX), as vdirsyncer does:

    PROPFIND Depth 0  `CS:getctag` and `D:sync-token` of the collection: the same as stored
                      means nothing changed (the round is one request)
    PROPFIND Depth 1  each member's `D:getetag`, with `D:resourcetype` and `D:getcontenttype`
                      to skip the collection itself, sub-collections (iCloud's inbox, outbox,
                      notification) and members that are not calendar objects
    diff              against the etags stored in the cursor: new or changed ids are read with
                      calendar-multiget (`fetch_wire.multiget_body`), vanished ids are deleted

Requests: `propfind_body()` (the same body for both depths). Answers: `parse_listing` reads a
207 into a `Listing` (the collection's version, its members' etag digests and hrefs); a
`ValueError` when it is not a multistatus.

Cursor: a string, stored in the feed's sync state: ``"etag:"`` + compact JSON
``{"ctag": version, "etags": {resource_id: digest}}`` (resource ids decoded as
`fetch_wire.resource_id` does; the digest is 16 hex of the etag's sha256, only ever compared
for equality, so a calendar of thousands of events stays a small record). `read_cursor` gives
None for a cursor of the other kind (a sync token) or a malformed one: a full round, not an
error. The version is the collection's getctag, else its sync-token, else None (never equal:
every round lists the members).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from urllib.parse import urljoin
from xml.etree import ElementTree

from connectors.calendar.caldav.fetch_wire import DAV, resource_id

CS = "http://calendarserver.org/ns/"
CURSOR_PREFIX = "etag:"


def propfind_body() -> bytes:
    """The PROPFIND body of both listings (Depth 0: the collection; Depth 1: its members)."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<d:propfind xmlns:d="DAV:" xmlns:cs="{CS}"><d:prop>'
        "<cs:getctag/><d:sync-token/><d:getetag/><d:resourcetype/><d:getcontenttype/>"
        "</d:prop></d:propfind>"
    ).encode()


@dataclass(frozen=True, slots=True)
class Listing:
    """A PROPFIND answer: the collection's version and its calendar object members."""

    version: str | None
    etags: dict[str, str] = field(default_factory=dict)  # resource id -> etag digest
    hrefs: dict[str, str] = field(default_factory=dict)  # resource id -> absolute href


@dataclass(frozen=True, slots=True)
class EtagState:
    """What an etag cursor holds: the version seen and every member's etag digest."""

    version: str | None
    etags: dict[str, str]


def parse_listing(body: bytes, base_url: str) -> Listing:
    """A PROPFIND 207 (module docstring); ValueError when it is not a multistatus."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise ValueError(f"not XML: {exc}") from None
    if root.tag != f"{{{DAV}}}multistatus":
        raise ValueError("not a DAV:multistatus")
    collection = resource_id(base_url)
    version: str | None = None
    etags: dict[str, str] = {}
    hrefs: dict[str, str] = {}
    for response in root.findall(f"{{{DAV}}}response"):
        href_text = (response.findtext(f"{{{DAV}}}href") or "").strip()
        if not href_text:
            continue
        href = urljoin(base_url, href_text)
        rid = resource_id(href)
        props = _found_props(response)
        if rid == collection:
            version = _text(props, f"{{{CS}}}getctag") or _text(props, f"{{{DAV}}}sync-token")
            continue
        etag = _text(props, f"{{{DAV}}}getetag")
        if etag is None or not rid.startswith(collection + "/") or not _calendar_object(props):
            continue
        etags[rid], hrefs[rid] = digest(etag), href
    return Listing(version, etags, hrefs)


def digest(etag: str) -> str:
    """What the cursor keeps of an etag: 16 hex of its sha256 (compared for equality only)."""
    return hashlib.sha256(etag.strip().encode()).hexdigest()[:16]


def changes(old: dict[str, str], listing: Listing) -> tuple[list[str], list[str]]:
    """(new or changed ids in listing order, vanished ids in stored order)."""
    changed = [rid for rid, tag in listing.etags.items() if old.get(rid) != tag]
    gone = [rid for rid in old if rid not in listing.etags]
    return changed, gone


def cursor(state: EtagState) -> str:
    """The cursor string of `state` (module docstring)."""
    payload = {"ctag": state.version, "etags": dict(sorted(state.etags.items()))}
    return CURSOR_PREFIX + json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def is_cursor(value: str | None) -> bool:
    """True when `value` is an etag cursor (whatever else it is, a sync token)."""
    return value is not None and value.startswith(CURSOR_PREFIX)


def read_cursor(value: str | None) -> EtagState | None:
    """The state in an etag cursor; None when it is absent, a sync token or malformed."""
    if value is None or not is_cursor(value):
        return None
    try:
        payload = json.loads(value[len(CURSOR_PREFIX) :])
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    version, etags = payload.get("ctag"), payload.get("etags")
    if version is not None and not isinstance(version, str):
        return None
    if not isinstance(etags, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in etags.items()
    ):
        return None
    return EtagState(version, etags)


def _found_props(response: ElementTree.Element) -> list[ElementTree.Element]:
    """The `D:prop` elements of a response's 200 propstats (404 ones name missing props)."""
    found = []
    for propstat in response.findall(f"{{{DAV}}}propstat"):
        status = (propstat.findtext(f"{{{DAV}}}status") or "").split()
        if len(status) >= 2 and status[1] == "200":
            found.extend(propstat.findall(f"{{{DAV}}}prop"))
    return found


def _text(props: list[ElementTree.Element], tag: str) -> str | None:
    for prop in props:
        value = (prop.findtext(tag) or "").strip()
        if value:
            return value
    return None


def _calendar_object(props: list[ElementTree.Element]) -> bool:
    """Not a collection of any kind (its resourcetype is empty) and, when the server names
    a content type, iCalendar."""
    for prop in props:
        kind = prop.find(f"{{{DAV}}}resourcetype")
        if kind is not None and len(kind):
            return False
    content_type = _text(props, f"{{{DAV}}}getcontenttype")
    return content_type is None or content_type.lower().startswith("text/calendar")
