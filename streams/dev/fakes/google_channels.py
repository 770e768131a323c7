"""Push channels of the Google Calendar fake (`google.py`): `events.watch`, `channels.stop`
and the notifications Google POSTs to a channel's address.

    POST /calendar/v3/calendars/{calendarId}/events/watch   events.watch
    POST /calendar/v3/channels/stop                         channels.stop

As documented: the watch body has `id` (1-64 chars, unique among live channels, else 400
`channelIdNotUnique`), `type` `web_hook`, `address`, an optional `token` (<= 256 chars) and
`params.ttl` (seconds, default 604800; `max_ttl_s` caps it, as Google's "more restrictive
value is used"). The answer is {kind: api#channel, id, resourceId (the same for every channel
of one calendar), resourceUri, token, expiration (ms, a string)}. Right after the channel is
made the fake POSTs the `sync` notification (X-Goog-Message-Number 1), possibly before the
client has read the watch answer; every change of an event of the calendar (the fake's
`change_hooks`: API writes and the vendor's own edits) POSTs `exists` to every live channel of
it, with increasing, non-sequential message numbers. A notification has no body, User-Agent
`APIs-Google`, and the headers X-Goog-Channel-ID, -Channel-Token (when one was given),
-Channel-Expiration (an HTTP date), -Resource-ID, -Resource-URI, -Resource-State and
-Message-Number. Notifications of one channel are sent in order, one at a time.

`channels.stop` takes {id, resourceId}; an unknown id, another resourceId, another owner (only
the user that made the channel may stop it) or an expired channel is 404 `notFound`; else 204
and no more notifications. A channel past its expiration notifies no more.

Knobs (attributes): `drop_next_notifications` drops the next N notifications (their numbers
are used up, as when Google loses one); `max_ttl_s` caps channel lifetimes; `now_ms` is the
fake's clock (replace it to let channels expire without waiting). `pushes` records every
notification attempted (channel, state, number, status: the receiver's answer, 0 when it
could not be reached, -1 when dropped). Counters: channels_created, channels_stopped,
notifications_sent, notifications_failed, notifications_dropped. `history` keeps every
channel made (stopped and expired ones too): `lifetimes` answers when each was made and
stopped or expired, `push_late` sends a notification on an old one.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    from streams.dev.fakes.google import GoogleCalendarFake

DEFAULT_TTL_S = 604_800
USER_AGENT = "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)"
WATCH = "/calendar/v3/calendars/{calendar}/events/watch"
STOP = "/calendar/v3/channels/stop"


@dataclass
class WatchChannel:
    """A live channel as the fake keeps it."""

    id: str
    owner: str
    calendar: str
    resource_id: str
    resource_uri: str
    address: str
    token: str | None
    expiration_ms: int
    number: int = 1
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    created_ms: int = 0
    stopped_ms: int | None = None


class GoogleChannels:
    """The channel part of a `GoogleCalendarFake` (see the module docstring)."""

    def __init__(self, fake: GoogleCalendarFake) -> None:
        self.fake = fake
        self.live: dict[str, WatchChannel] = {}
        self.drop_next_notifications = 0
        self.max_ttl_s: int | None = None
        self.now_ms: Callable[[], int] = lambda: int(time.time() * 1000)
        self.pushes: list[dict[str, Any]] = []
        self.history: list[WatchChannel] = []  # every channel made, stopped ones too
        self._gaps = itertools.count()
        self._numbering = threading.Lock()  # hooks run on the test's thread too
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        fake.change_hooks.append(self._on_change)

    def routes(self, app: web.Application) -> None:
        app.router.add_post(WATCH, self.fake.authorised(self._watch))
        app.router.add_post(STOP, self.fake.authorised(self._stop))
        app.on_cleanup.append(self._close)

    def live_for(self, owner: str, calendar: str) -> list[WatchChannel]:
        """The channels of the owner's calendar that have not expired or been stopped."""
        now = self.now_ms()
        return [
            c
            for c in list(self.live.values())  # a copy: hooks run on other threads too
            if c.owner == owner and c.calendar == calendar and c.expiration_ms > now
        ]

    # ---- lifetimes (bookkeeping for the tests) -----------------------------------------------
    def _record_made(self, channel: WatchChannel, now_ms: int) -> None:
        channel.created_ms = now_ms
        self.history.append(channel)

    def lifetimes(self, owner: str, calendar: str) -> list[tuple[str, int, int | None]]:
        """(channel id, made at, stopped or expired at: None while live) of every channel the
        owner's calendar ever had, in the order they were made."""
        now = self.now_ms()
        out: list[tuple[str, int, int | None]] = []
        for c in list(self.history):
            if c.owner == owner and c.calendar == calendar:
                ended = min(c.expiration_ms, c.stopped_ms or c.expiration_ms)
                out.append((c.id, c.created_ms, ended if ended <= now else None))
        return out

    def push_late(self, channel_id: str, state: str = "exists") -> None:
        """Send a notification on a channel made before, stopped or expired ones too (as a
        late one Google delivers after the stop); recorded in `pushes` like the others."""
        self._schedule(next(c for c in self.history if c.id == channel_id), state)

    def stats(self) -> list[dict[str, Any]]:
        """The live channels (for GET /_fake/stats), without their tokens."""
        now = self.now_ms()
        return [
            {
                "id": c.id,
                "calendarId": c.calendar,
                "resourceId": c.resource_id,
                "address": c.address,
                "expiration": str(c.expiration_ms),
                "expired": c.expiration_ms <= now,
                "lastMessageNumber": c.number,
            }
            for c in list(self.live.values())
        ]

    # ---- routes --------------------------------------------------------------------------------
    async def _watch(self, request: web.Request, owner: str) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return self.fake.error(400, "parseError", "Parse Error")
        problem = _watch_problem(body)
        if problem:
            return self.fake.error(400, "invalid", problem)
        now = self.now_ms()
        if (old := self.live.get(body["id"])) is not None and old.expiration_ms > now:
            return self.fake.error(400, "channelIdNotUnique", f"Channel id {body['id']} not unique")
        ttl = _ttl(body.get("params"))
        if ttl is None:
            return self.fake.error(400, "invalid", "Invalid ttl value.")
        if self.max_ttl_s is not None:
            ttl = min(ttl, self.max_ttl_s)
        calendar = request.match_info["calendar"]
        resource = hashlib.sha256(f"{owner}|{calendar}".encode()).hexdigest()[:27]
        uri = f"https://www.googleapis.com/calendar/v3/calendars/{quote(calendar, safe='')}"
        channel = WatchChannel(body["id"], owner, calendar, resource, uri + "/events?alt=json",
                               body["address"], body.get("token"), now + ttl * 1000)  # fmt: skip
        self._loop = asyncio.get_running_loop()
        self.live[channel.id] = channel
        self._record_made(channel, now)
        self.fake.counters["channels_created"] += 1
        self._schedule(channel, "sync")  # may arrive before the client reads this answer
        answer = {
            "kind": "api#channel",
            "id": channel.id,
            "resourceId": channel.resource_id,
            "resourceUri": channel.resource_uri,
            "expiration": str(channel.expiration_ms),
        }
        if channel.token is not None:
            answer["token"] = channel.token
        return web.json_response(answer)

    async def _stop(self, request: web.Request, owner: str) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return self.fake.error(400, "parseError", "Parse Error")
        if not isinstance(body, dict):
            return self.fake.error(400, "invalid", "Invalid channel.")
        channel = self.live.get(str(body.get("id")))
        if (
            channel is None
            or channel.resource_id != body.get("resourceId")
            or channel.owner != owner
            or channel.expiration_ms <= self.now_ms()
        ):
            return self.fake.error(
                404, "notFound", f"Channel '{body.get('id')}' not found for project"
            )
        del self.live[channel.id]
        channel.stopped_ms = self.now_ms()
        self.fake.counters["channels_stopped"] += 1
        return web.Response(status=204)

    # ---- notifications ---------------------------------------------------------------------
    def _on_change(self, owner: str, calendar: str, event_id: str) -> None:
        for channel in self.live_for(owner, calendar):
            self._schedule(channel, "exists")

    def _schedule(self, channel: WatchChannel, state: str) -> None:
        """Number the notification now and send it on the fake's loop, after the channel's
        earlier ones (callable from any thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with self._numbering:
            if state != "sync":
                channel.number += 2 + next(self._gaps) % 5  # increasing, never sequential
            number = channel.number
            loop.call_soon_threadsafe(self._start, channel, state, number)

    def _start(self, channel: WatchChannel, state: str, number: int) -> None:
        task = asyncio.get_running_loop().create_task(self._push(channel, state, number))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _push(self, channel: WatchChannel, state: str, number: int) -> None:
        async with channel.lock:
            record: dict[str, Any] = {"channel": channel.id, "state": state, "number": number}
            self.pushes.append(record)
            if self.drop_next_notifications > 0:
                self.drop_next_notifications -= 1
                self.fake.counters["notifications_dropped"] += 1
                record["status"] = -1
                return
            headers = {
                "User-Agent": USER_AGENT,
                "X-Goog-Channel-ID": channel.id,
                "X-Goog-Channel-Expiration": formatdate(channel.expiration_ms / 1000, usegmt=True),
                "X-Goog-Resource-ID": channel.resource_id,
                "X-Goog-Resource-URI": channel.resource_uri,
                "X-Goog-Resource-State": state,
                "X-Goog-Message-Number": str(number),
            }
            if channel.token is not None:
                headers["X-Goog-Channel-Token"] = channel.token
            if self._session is None:
                self._session = aiohttp.ClientSession(  # no keep-alive: receivers stop freely
                    connector=aiohttp.TCPConnector(force_close=True),
                    timeout=aiohttp.ClientTimeout(total=10),
                )
            try:
                async with self._session.post(channel.address, headers=headers) as answer:
                    record["status"] = answer.status
            except (aiohttp.ClientError, TimeoutError, OSError):
                record["status"] = 0
            ok = 200 <= record["status"] < 300
            self.fake.counters["notifications_sent" if ok else "notifications_failed"] += 1

    async def _close(self, app: web.Application) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None


def _watch_problem(body: Any) -> str | None:
    """What is wrong with a watch request body, or None."""
    if not isinstance(body, dict):
        return "Invalid channel."
    channel_id, token = body.get("id"), body.get("token")
    if not isinstance(channel_id, str) or not 0 < len(channel_id) <= 64:
        return "Invalid channel id: 1 to 64 characters."
    if body.get("type") not in ("web_hook", "webhook"):
        return "Invalid channel type: web_hook expected."
    address = body.get("address")
    if not isinstance(address, str) or not address.startswith(("https://", "http://")):
        return "Invalid channel address."
    if token is not None and (not isinstance(token, str) or len(token) > 256):
        return "Invalid channel token: at most 256 characters."
    return None


def _ttl(params: Any) -> int | None:
    """`params.ttl` in seconds (a string or number; default 604800); None when invalid."""
    if params is None:
        return DEFAULT_TTL_S
    if not isinstance(params, dict):
        return None
    raw = params.get("ttl", DEFAULT_TTL_S)
    try:
        ttl = int(raw)
    except (TypeError, ValueError):
        return None
    return ttl if ttl > 0 else None
