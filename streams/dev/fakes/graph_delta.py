"""The Graph fake's calendarView delta feed and the vendor's own edits (as if made in Outlook).

Routes (wired by `GraphFake.routes`):

    GET /v1.0/me/calendarView/delta, /v1.0/me/calendars/{id}/calendarView/delta

The first call needs ``startDateTime`` and ``endDateTime`` (else 400 ``ErrorInvalidRequest``);
``Prefer: odata.maxpagesize=N`` (default `PAGE_SIZE`) and ``Prefer: outlook.timezone="<zone>"``
(UTC when absent; all-day events keep their midnights, labelled with that zone). Pages chain
by ``@odata.nextLink`` (``$skiptoken``); the last page carries ``@odata.deltaLink``
(``$deltatoken``). The window, the options and the change sequence the round was read at are
encoded in the delta token (opaque to clients). A call with a delta token returns only what
changed since: current items still in the window, ``{"id", "@removed": {"reason": "deleted"}}``
for deleted items and for items that left the window (removals are sent whatever their times).

A recurring series (``recurrence.pattern.type`` daily/weekly with ``interval``;
``recurrence.range.numberOfOccurrences``) shows as its occurrences (``type`` occurrence, or
exception when moved by `vendor_move_occurrence`), never the master;
`vendor_cancel_occurrence` removes one occurrence (or keeps it flagged ``isCancelled``).

Knobs: `expire_delta_tokens()` -> every delta token issued so far answers 410 Gone with a
``Location`` (a fresh delta URL: the window and an empty ``$deltatoken``); `forget_sync_state()`
-> they answer 400 ``syncStateNotFound``. Every change (vendor edits and the sink's writes)
bumps `seq` and reaches the subscriptions hub (`changed`).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

if TYPE_CHECKING:
    from streams.dev.fakes.graph import GraphFake

PAGE_SIZE = 100
DELTA_PATHS = ("/v1.0/me/calendarView/delta", "/v1.0/me/calendars/{calendar}/calendarView/delta")
MAX_PAGE = re.compile(r"odata\.maxpagesize\s*=\s*(\d+)")
TIMEZONE = re.compile(r'outlook\.timezone\s*=\s*"?([^",;]+)"?')
STAMP = "%Y-%m-%dT%H:%M:%S.0000000"
REMOVED = {"reason": "deleted"}


def _encode(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()


def _decode(token: str) -> dict[str, Any] | None:
    try:
        state = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError):
        return None
    return state if isinstance(state, dict) else None


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _naive(value: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(value["dateTime"])[:19])


def _ms(value: dict[str, Any]) -> int:
    """A dateTimeTimeZone as UTC ms (IANA or UTC zones; unknown zones read as UTC)."""
    return int(_naive(value).replace(tzinfo=_zone(value.get("timeZone"))).timestamp() * 1000)


def _window_ms(text: str) -> int:
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() * 1000)


@dataclass
class _Item:
    """One entry of a calendar's view: an event or an occurrence, its last change."""

    body: dict[str, Any]
    seq: int
    start_ms: int
    end_ms: int


class DeltaFeed:
    """calendarView delta and vendor edits of one `GraphFake` (see the module docstring)."""

    def __init__(self, fake: GraphFake) -> None:
        self.fake = fake
        self.seq = 0
        self.tombstones: list[tuple[str, str, str, int]] = []  # owner, calendar, id, seq
        self.delta_tokens: dict[str, str] = {}  # nonce -> "ok" | "expired" | "forgotten"
        self.rounds: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {}

    def routes(self, app: web.Application) -> None:
        for path in DELTA_PATHS:
            app.router.add_get(path, self.fake.authorised(self._delta))

    # ---- knobs -----------------------------------------------------------------------------
    def expire_delta_tokens(self) -> None:
        """Every delta token issued so far answers 410 Gone (Graph maintenance)."""
        self.delta_tokens = dict.fromkeys(self.delta_tokens, "expired")

    def forget_sync_state(self) -> None:
        """Every delta token issued so far answers 400 syncStateNotFound (cache evicted)."""
        self.delta_tokens = dict.fromkeys(self.delta_tokens, "forgotten")

    # ---- changes ---------------------------------------------------------------------------
    def bump(self) -> int:
        self.seq += 1
        return self.seq

    def touched(self, event: dict[str, Any], change: str) -> None:
        """`event` (stored) was created or updated: stamp it, tombstone vanished occurrences."""
        before = set(event.get("_occurrences", ()))
        event["_seq"] = self.bump()
        event["lastModifiedDateTime"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
        now = {item.body["id"] for item in self.readable(event)}
        event["_occurrences"] = sorted(now)
        for gone in before - now:
            self.tombstones.append((event["_owner"], event["_calendar"], gone, self.seq))
        self.fake.hub.changed(event["_owner"], event["_calendar"], event["id"], change)

    def removed(self, event: dict[str, Any]) -> None:
        """`event` was deleted: tombstone it (and its occurrences)."""
        seq = self.bump()
        owner, calendar = event["_owner"], event["_calendar"]
        for gone in event.get("_occurrences") or [event["id"]]:
            self.tombstones.append((owner, calendar, gone, seq))
        self.fake.hub.changed(owner, calendar, event["id"], "deleted")

    # ---- vendor edits (called from the test's thread or the fake's loop) --------------------
    def vendor_upsert(self, owner: str, calendar_id: str, event: dict[str, Any]) -> str:
        """Create (no ``id``) or replace (known ``id``) a vendor event; returns its id."""
        return self.fake.on_loop(self._upsert, owner, calendar_id, dict(event))

    def vendor_delete(self, owner: str, calendar_id: str, event_id: str) -> None:
        """Delete a vendor event (KeyError when it is unknown)."""
        self.fake.on_loop(self._delete, owner, calendar_id, event_id)

    def vendor_move_occurrence(
        self, owner: str, series_id: str, index: int, start: dict[str, Any], end: dict[str, Any]
    ) -> str:
        """Move occurrence `index` (0-based) of a series: it becomes an exception; its id."""
        return self.fake.on_loop(self._edit_occurrence, owner, series_id, index,
                                 {"start": start, "end": end})  # fmt: skip

    def vendor_cancel_occurrence(
        self, owner: str, series_id: str, index: int, *, keep: bool = False
    ) -> str:
        """Cancel occurrence `index`: gone from the view (or kept with ``isCancelled``)."""
        return self.fake.on_loop(self._edit_occurrence, owner, series_id, index,
                                 {"cancelled": "keep" if keep else "remove"})  # fmt: skip

    def _upsert(self, owner: str, calendar: str, event: dict[str, Any]) -> str:
        known = self.fake.events.get(str(event.get("id", "")))
        if known is not None and known["_owner"] != owner:
            raise KeyError(event["id"])
        event_id = str(event.get("id") or "AAMkAG" + secrets.token_urlsafe(18))
        stored: dict[str, Any] = {
            "iCalUId": "040000008200E00074C5B7101A82E008" + secrets.token_hex(16),
            "showAs": "busy", "isAllDay": False, "isCancelled": False,
            "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
            **({k: v for k, v in known.items() if k in ("iCalUId",)} if known else {}),
            **{k: v for k, v in event.items() if not k.startswith("_")},
            "id": event_id, "@odata.etag": self.fake.etag(),
            "_owner": owner, "_calendar": calendar, "_properties": {},
            "_occurrences": (known or {}).get("_occurrences", []),
            "_edits": (known or {}).get("_edits", {}),
        }  # fmt: skip
        stored["type"] = "seriesMaster" if stored.get("recurrence") else "singleInstance"
        self.fake.events[event_id] = stored
        self.touched(stored, "updated" if known else "created")
        return event_id

    def _delete(self, owner: str, calendar: str, event_id: str) -> None:
        event = self.fake.events.get(event_id)
        if event is None or event["_owner"] != owner or event["_calendar"] != calendar:
            raise KeyError(event_id)
        del self.fake.events[event_id]
        self.removed(event)

    def _edit_occurrence(self, owner: str, series_id: str, index: int, edit: dict[str, Any]) -> str:
        series = self.fake.events[series_id]
        if series["_owner"] != owner or not series.get("recurrence"):
            raise KeyError(series_id)
        series["_edits"][str(index)] = {**series["_edits"].get(str(index), {}), **edit}
        self.touched(series, "updated")
        return self.occurrence_id(series, index)

    # ---- the view --------------------------------------------------------------------------
    @staticmethod
    def occurrence_id(series: dict[str, Any], index: int) -> str:
        return f"{series['id']}_OCC{index:04d}"

    def expand(self, event: dict[str, Any]) -> list[_Item]:
        """A single event as itself; a series master as its occurrences."""
        public = {k: v for k, v in event.items() if not k.startswith("_") and k != "@odata.etag"}
        seq = int(event.get("_seq", 0))
        recurrence = event.get("recurrence")
        if not recurrence:
            return [_Item(public, seq, _ms(event["start"]), _ms(event["end"]))]
        pattern, span = recurrence.get("pattern", {}), recurrence.get("range", {})
        step = timedelta(days=int(pattern.get("interval", 1)) *
                         (7 if pattern.get("type") == "weekly" else 1))  # fmt: skip
        first, last = _naive(event["start"]), _naive(event["end"])
        items = []
        for index in range(int(span.get("numberOfOccurrences", 1))):
            edit = event.get("_edits", {}).get(str(index), {})
            if edit.get("cancelled") == "remove":
                continue
            original = first + step * index
            start = edit.get("start") or {**event["start"], "dateTime": original.isoformat()}
            end = edit.get("end") or {**event["end"], "dateTime": (last + step * index).isoformat()}
            zone = _zone(event["start"].get("timeZone"))
            body = {k: v for k, v in public.items() if k != "recurrence"}
            body.update(id=self.occurrence_id(event, index), seriesMasterId=event["id"],
                        start=start, end=end, type="exception" if edit else "occurrence",
                        originalStart=original.replace(tzinfo=zone).isoformat())  # fmt: skip
            if edit.get("cancelled") == "keep":
                body["isCancelled"] = True
            items.append(_Item(body, seq, _ms(start), _ms(end)))
        return items

    def readable(self, event: dict[str, Any]) -> list[_Item]:
        """`expand`, or nothing for an event whose times cannot be read (never shown)."""
        try:
            return self.expand(event)
        except (KeyError, TypeError, ValueError):
            return []

    def view(self, owner: str, calendar: str) -> dict[str, _Item]:
        items: dict[str, _Item] = {}
        for event in self.fake.events.values():
            if event["_owner"] == owner and event["_calendar"] == calendar:
                items.update((i.body["id"], i) for i in self.readable(event))
        return items

    @staticmethod
    def shown(item: _Item, zone: str) -> dict[str, Any]:
        """The item in the requested zone (all-day midnights stay midnights)."""
        body = dict(item.body)
        for key, ms in (("start", item.start_ms), ("end", item.end_ms)):
            if body.get("isAllDay"):
                text = _naive(body[key]).strftime(STAMP)
            else:
                text = datetime.fromtimestamp(ms / 1000, _zone(zone)).strftime(STAMP)
            body[key] = {"dateTime": text, "timeZone": zone}
        return body

    # ---- the route -------------------------------------------------------------------------
    async def _delta(self, request: web.Request, owner: str) -> web.Response:
        calendar = request.match_info.get("calendar", "primary")
        query = request.query
        skip, delta = query.get("$skiptoken"), query.get("$deltatoken")
        if skip:
            return self._page(request, skip)
        if delta:
            state = _decode(delta)
            status = self.delta_tokens.get(str((state or {}).get("n")))
            if status == "expired" and state is not None:
                return self._gone(request, state)
            if state is None or status != "ok" or state.get("o") != owner:
                return self.fake.error(400, "syncStateNotFound",
                                       "The sync state generation is not found.")  # fmt: skip
            return self._start(request, state, since=int(state["q"]))
        try:
            start, end = query["startDateTime"], query["endDateTime"]
            window = (_window_ms(start), _window_ms(end))
        except (KeyError, ValueError):
            return self.fake.error(400, "ErrorInvalidRequest",
                "This request requires a time window specified by the query string parameters "
                "StartDateTime and EndDateTime.")  # fmt: skip
        prefer = ",".join(request.headers.getall("Prefer", []))
        size, zone = MAX_PAGE.search(prefer), TIMEZONE.search(prefer)
        state = {"o": owner, "c": calendar, "s": window[0], "e": window[1], "ws": start,
                 "we": end, "p": int(size.group(1)) if size else PAGE_SIZE,
                 "z": zone.group(1).strip() if zone else "UTC"}  # fmt: skip
        return self._start(request, state, since=None)

    def _start(
        self, request: web.Request, state: dict[str, Any], since: int | None
    ) -> web.Response:
        owner, calendar, zone = state["o"], state["c"], state["z"]
        lo, hi = int(state["s"]), int(state["e"])

        def inside(item: _Item) -> bool:
            return item.start_ms < hi and item.end_ms > lo

        view = self.view(owner, calendar)
        values: list[dict[str, Any]] = []
        if since is None:
            values = [self.shown(i, zone) for i in view.values() if inside(i)]
        else:
            for item_id, item in view.items():
                if item.seq > since:
                    values.append(self.shown(item, zone) if inside(item)
                                  else {"id": item_id, "@removed": REMOVED})  # fmt: skip
            values += [
                {"id": gone, "@removed": REMOVED}
                for o, c, gone, seq in self.tombstones
                if o == owner and c == calendar and seq > since and gone not in view
            ]
        round_id = secrets.token_urlsafe(8)
        self.rounds[round_id] = (values, {**state, "q": self.seq})
        self.fake.counters["delta_rounds"] += 1
        return self._page(request, _encode({"r": round_id, "i": 0}))

    def _page(self, request: web.Request, skip: str) -> web.Response:
        pointer = _decode(skip) or {}
        held = self.rounds.get(str(pointer.get("r")))
        if held is None:
            return self.fake.error(400, "syncStateNotFound", "The skip token is not valid.")
        values, state = held
        offset = int(pointer.get("i", 0))
        size = max(1, int(state["p"]))
        base = f"{request.url.origin()}{request.path}"
        body: dict[str, Any] = {
            "@odata.context": f"{request.url.origin()}/v1.0/$metadata#Collection(event)",
            "value": values[offset : offset + size],
        }
        if offset + size < len(values):
            token = _encode({"r": pointer["r"], "i": offset + size})
            body["@odata.nextLink"] = f"{base}?$skiptoken={token}"
        else:
            nonce = secrets.token_urlsafe(8)
            self.delta_tokens[nonce] = "ok"
            body["@odata.deltaLink"] = f"{base}?$deltatoken={_encode({**state, 'n': nonce})}"
            del self.rounds[pointer["r"]]
        self.fake.counters["delta_pages"] += 1
        return web.json_response(body)

    def _gone(self, request: web.Request, state: dict[str, Any]) -> web.Response:
        fresh = (f"{request.url.origin()}{request.path}?startDateTime={quote(state['ws'])}"
                 f"&endDateTime={quote(state['we'])}&$deltatoken=")  # fmt: skip
        return self.fake.error(410, "resyncRequired",
            "Resync required. Replace any local items with the server's items.",
            Location=fresh)  # fmt: skip
