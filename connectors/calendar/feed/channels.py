"""Push channels of the connected Google and Graph calendars, kept alive (CALENDAR_SYNC.md
§5.4): `ChannelManager.maintain` runs `streams.logic.calendar.channels.plan` for every
calendar and carries out its Create / Stop / Renew actions, at most `max_calls` provider
calls a pass (10,000 calendars connecting at once are served over several passes, in turn).

State. A calendar's channels are `CalendarSync.channels` (the `Channel` fields as dicts),
written with `feed.writer.write([], [], state, key)` after every change, so they survive a
restart (`load` rebuilds the index from them). The manager's own copy (`held`) is the truth:
a pass that finds the feed's copy different (a round written over it) writes it again.
`feed.channel_index` (channel / subscription id -> calendar key) and `feed.push_live`
(calendars with an active, unexpired channel) follow every change.

Google: a channel id is a uuid4, registered in `channel_index` before `events.watch`, since
its `sync` message may arrive before the watch answer; the token is
`issue_token(keys, integration_id, channel_id)`. The successor of an expiring channel is made
first; the old one is stopped once the successor's `sync` arrived (or 10 min), as `plan` says.
Graph: the subscription id is Graph's, known only after the create, and `clientState` cannot
be changed later, so the clientState MAC is bound to the integration id
(`issue_token(keys, integration_id, integration_id)`); renewed by PATCH at half-life; a PATCH
or reauthorize answered 404 means the subscription is gone: a new one is made.
After every create the calendar is pushed once (a fetch covers the gap).

Lifecycle (`on_lifecycle`, PushRouter's callback): `sync` -> active; `missed` -> nothing (the
router already asked for a fetch); `subscriptionRemoved` -> forgotten, recreated next pass;
`reauthorizationRequired` -> a reauthorize call next pass. Disconnected calendars (the engine
calls `feed.on_disconnect(state)` before it forgets the state, and states left over from
before a restart) have their channels stopped. `reauth` / `gone` calendars: no calls.

Errors (`feed_errors`): FetchFailed -> counted, tried again next pass; Throttled -> counted,
tried again once its Retry-After has passed;
ReauthRequired -> left alone (the fetch path marks the calendar); CalendarGone -> no more
tries for that calendar until it is connected again.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import httpx
from streams.logic.calendar.channels import (
    Action,
    Channel,
    Create,
    Renew,
    Stop,
    issue_token,
    plan,
)
from streams.logic.calendar.rounds import CalendarRef

from connectors.calendar.feed.engine import CalendarFeed
from connectors.calendar.feed.providers import ProviderFetchers
from connectors.calendar.feed.sync_state import CalendarSync
from connectors.calendar.feed_errors import CalendarGone, FetchError, ReauthRequired, Throttled
from connectors.calendar.google.channels import GoogleChannelCalls
from connectors.calendar.graph import channels as graph_channels
from connectors.sinks.credentials import MissingCredential

log = logging.getLogger("wedsync.calendar.channels")

T = TypeVar("T")
Call = Callable[[httpx.AsyncClient, str], Awaitable[T]]  # (the account's client, access token)
GOOGLE_TTL_S = 7 * 24 * 3600  # documented default; Google's answered expiration is kept
PROVIDERS = ("google", "graph")
_FIELDS = tuple(f.name for f in dataclasses.fields(Channel))


class _OutOfCalls(Exception):
    """This pass has made its `max_calls` provider calls."""


def to_dicts(channels: Iterable[Channel]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(c) for c in channels]


def from_dicts(raw: Iterable[dict[str, Any]]) -> list[Channel]:
    """The stored channels; a malformed entry is skipped."""
    out: list[Channel] = []
    for item in raw:
        try:
            values = {name: item[name] for name in _FIELDS}
            out.append(Channel(**values))
        except (KeyError, TypeError):
            log.warning("a stored channel is malformed; skipped")
    return out


def calendar_of(key: str) -> CalendarRef:
    """Enough of a calendar to call its provider (a key is provider:integration:calendar)."""
    provider, integration, calendar_id = key.split(":", 2)
    return CalendarRef(provider, integration, "", calendar_id)  # type: ignore[arg-type]


class ChannelManager:
    def __init__(
        self,
        feed: CalendarFeed,
        fetchers: ProviderFetchers,
        *,
        keys: Sequence[bytes],
        google_push_url: str | None,
        graph_push_url: str | None,
        clock: Callable[[], float] = time.time,
        max_calls: int = 50,
        google_ttl_s: int = GOOGLE_TTL_S,
    ) -> None:
        self.feed = feed
        self.fetchers = fetchers
        self.keys = list(keys)
        self.urls = {"google": google_push_url, "graph": graph_push_url}
        self.clock = clock
        self.max_calls = max_calls
        self.google_ttl_s = google_ttl_s
        self.held: dict[str, list[Channel]] = {}  # calendar key -> its channels (the truth)
        self.failures = 0  # provider calls that failed (tried again next pass)
        self.stopping: dict[str, list[Channel]] = {}  # disconnected calendars' open channels
        self._synced: set[str] = set()  # sync arrived before the watch answer
        self._reauthorize: set[str] = set()  # subscription ids
        self._given_up: set[str] = set()  # calendar keys answered CalendarGone
        self._orphans: set[str] = set()  # orphan ids stopped already
        self._dirty: set[str] = set()  # calendars whose channels changed, not yet written
        self._not_before: dict[str, int] = {}  # throttled calendars: no call before (ms)
        self._offset = 0
        self._calls = 0
        feed.on_disconnect = self.on_disconnect

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ---- state -----------------------------------------------------------------------------
    def load(self) -> None:
        """Rebuild the channels, `channel_index` and `push_live` from the sync states read
        back at start (call once, after `feed.load`)."""
        for key, state in self.feed.sync.items():
            channels = from_dicts(state.channels)
            if channels:
                self.held[key] = channels
                self._index(key, channels)

    def _index(self, key: str, channels: list[Channel], dropped: Iterable[Channel] = ()) -> None:
        for channel in dropped:
            if self.feed.channel_index.get(channel.channel_id) == key:
                del self.feed.channel_index[channel.channel_id]
        now = self.now_ms()
        live = False
        for channel in channels:
            self.feed.channel_index[channel.channel_id] = key
            live |= channel.state == "active" and channel.expires_at_ms > now
        if live:
            self.feed.push_live.add(key)
        else:
            self.feed.push_live.discard(key)

    def _set(self, key: str, channels: list[Channel]) -> None:
        """Hold `channels` as the calendar's and index them (not written yet)."""
        ids = {c.channel_id for c in channels}
        dropped = [c for c in self.held.get(key, []) if c.channel_id not in ids]
        self.held[key] = channels
        self._dirty.add(key)
        self._index(key, channels, dropped)
        state = self.feed.sync.get(key)
        if state is not None:
            self.feed.sync[key] = dataclasses.replace(state, channels=to_dicts(channels))

    async def _save(self, key: str) -> None:
        """Write the calendar's held channels with its sync state (the engine's pattern)."""
        state = self.feed.sync.get(key)
        if state is None:
            return
        new = dataclasses.replace(state, channels=to_dicts(self.held.get(key, [])))
        self._dirty.discard(key)
        try:
            await self.feed.writer.write([], [], new, key)
        except Exception:
            self._dirty.add(key)  # written again next pass
            raise
        current = self.feed.sync.get(key)  # a round may have moved it on meanwhile
        if current is not None:
            self.feed.sync[key] = dataclasses.replace(current, channels=new.channels)

    # ---- inputs ----------------------------------------------------------------------------
    def on_disconnect(self, state: CalendarSync) -> None:
        """The engine is about to forget `state`: its open channels are stopped next pass."""
        channels = [c for c in self.held.pop(state.key, from_dicts(state.channels))
                    if c.state != "stopped"]  # fmt: skip
        self._given_up.discard(state.key)
        self._index(state.key, [], channels)
        if channels:
            self.stopping[state.key] = channels

    def on_lifecycle(self, key: str, channel_id: str, event: str) -> None:
        """A lifecycle message of one of our channels (PushRouter's callback)."""
        channels = self.held.get(key, [])
        found = next((c for c in channels if c.channel_id == channel_id), None)
        if event == "sync":
            if found is None:
                self._synced.add(channel_id)  # the watch answer is still on its way
            elif found.state == "pending_sync":
                self._set(key, [dataclasses.replace(c, state="active") if c is found else c
                                for c in channels])  # fmt: skip
        elif event == "subscriptionRemoved" and found is not None:
            self._set(key, [c for c in channels if c is not found])
        elif event == "reauthorizationRequired" and found is not None:
            self._reauthorize.add(channel_id)

    # ---- the pass ----------------------------------------------------------------------------
    async def maintain(self) -> int:
        """One pass over every calendar (see the module docstring); the provider calls made.
        Runs after the feed's first `connect` (a sync state of a calendar not connected is
        taken for a disconnected one), one pass at a time."""
        self._calls = 0
        try:
            await self._stop_disconnected()
            keys = [k for k in self.feed.calendars]
            if keys:
                start = self._offset % len(keys)
                for n, key in enumerate(keys[start:] + keys[:start]):
                    self._offset = start + n
                    await self._calendar(key)
                self._offset = 0
        except _OutOfCalls:
            pass
        return self._calls

    def _spend(self) -> None:
        if self._calls >= self.max_calls:
            raise _OutOfCalls
        self._calls += 1

    async def _stop_disconnected(self) -> None:
        # states read back at start for calendars no longer connected
        for key in [k for k in self.feed.sync if k not in self.feed.calendars]:
            if key in self.held and key not in self.stopping:
                self.on_disconnect(self.feed.sync[key])
        now = self.now_ms()
        for key, channels in list(self.stopping.items()):
            calendar = calendar_of(key)
            for channel in channels:
                if channel.expires_at_ms > now:  # an expired one notifies no more
                    try:
                        await self._stop(calendar, channel)
                    except (ReauthRequired, CalendarGone):
                        pass  # nobody can stop it: it expires on its own
                    except FetchError as exc:
                        self._failed(key, exc)
                        continue
                self.stopping[key] = [c for c in self.stopping[key] if c != channel]
            if not self.stopping[key]:
                del self.stopping[key]

    async def _calendar(self, key: str) -> None:
        item, state = self.feed.calendars.get(key), self.feed.sync.get(key)
        if item is None or state is None or item.calendar.provider not in PROVIDERS:
            return
        calendar = item.calendar
        channels = self.held.setdefault(key, from_dicts(state.channels))
        self._index(key, channels)  # a channel may have expired since
        if not self.urls[calendar.provider] or not self.keys:
            return
        if state.reauth or state.gone or key in self._given_up:
            return
        if self._not_before.get(key, 0) > self.now_ms():
            return
        try:
            if key in self._dirty or state.channels != to_dicts(channels):
                await self._save(key)  # changed by a lifecycle message, or written over
            for action in plan(channels, self.now_ms(), True):
                await self._act(calendar, action)
            await self._reauthorize_due(calendar)
        except _OutOfCalls:
            raise
        except ReauthRequired as exc:
            log.info("calendar %s: channel call refused the credential (%s)", key, exc)
        except CalendarGone as exc:
            log.warning("calendar %s: gone for its channel calls (%s)", key, exc)
            self._given_up.add(key)
        except Throttled as exc:
            self._not_before[key] = self.now_ms() + int(exc.retry_after_s * 1000)
            self._failed(key, exc)
        except FetchError as exc:
            self._failed(key, exc)
        except Exception as exc:  # a failed write: the channels are held, written next pass
            log.warning("calendar %s: channel state not written: %s", key, exc)

    def _failed(self, key: str, exc: Exception) -> None:
        self.failures += 1
        log.warning("calendar %s: channel call failed, tried again next pass: %s", key, exc)

    async def _act(self, calendar: CalendarRef, action: Action) -> None:
        key = calendar.key
        if isinstance(action, Stop):
            await self._stop(calendar, action.channel)
            self._set(key, [c for c in self.held[key] if c.channel_id != action.channel.channel_id])
        elif isinstance(action, Create):
            made = await self._create(calendar)
            old = action.replaces
            self._set(key, [dataclasses.replace(c, state="replacing")
                            if old is not None and c.channel_id == old.channel_id else c
                            for c in self.held[key]] + [made])  # fmt: skip
            self.feed.push(key)  # a fetch covers the gap (before the write: it may fail)
            await self._save(key)
            return
        else:
            await self._renew(calendar, action)
        await self._save(key)

    async def _renew(self, calendar: CalendarRef, action: Renew) -> None:
        key, now, channel = calendar.key, self.now_ms(), action.channel
        base = self.fetchers.graph.api_base_url
        renewed = await self._call(calendar, lambda api, token: graph_channels.renew_subscription(
            api, base, token, channel.channel_id, now_ms=now))  # fmt: skip
        self._reauthorize.discard(channel.channel_id)  # a PATCH reauthorizes too
        rest = [c for c in self.held[key] if c.channel_id != channel.channel_id]
        if renewed is None:  # Graph no longer knows it: a new one, and a fetch
            self._set(key, rest)
            await self._act(calendar, Create())
            return
        longer = dataclasses.replace(
            channel, expires_at_ms=renewed.expires_ms, created_at_ms=now, state="active"
        )
        self._set(key, [*rest, longer])

    async def _reauthorize_due(self, calendar: CalendarRef) -> None:
        base = self.fetchers.graph.api_base_url
        for channel in list(self.held.get(calendar.key, [])):
            if channel.channel_id not in self._reauthorize:
                continue
            ok = await self._call(calendar, self._reauthorizer(base, channel.channel_id))
            self._reauthorize.discard(channel.channel_id)
            if not ok:
                self._set(calendar.key, [c for c in self.held[calendar.key] if c != channel])
                await self._act(calendar, Create())

    # ---- provider calls ----------------------------------------------------------------------
    def _reauthorizer(self, base: str, subscription_id: str) -> Call[bool]:
        return lambda api, token: graph_channels.reauthorize(api, base, token, subscription_id)

    async def _call(self, calendar: CalendarRef, call: Call[T], counted: bool = True) -> T:
        """One provider call with the integration's token (refreshed once on a refusal) and
        the account's rate-limited client (`fetchers.api`; a Throttled is charged to the
        account); `counted` ones are part of the pass's `max_calls`."""
        if counted:
            self._spend()
        api = self.fetchers.api(calendar)
        for refresh in (False, True):
            try:
                token = await self.fetchers.token(calendar, refresh=refresh)
            except MissingCredential as exc:
                raise ReauthRequired(f"{calendar.provider}: {exc}") from None
            try:
                return await call(api, token)
            except ReauthRequired:
                if refresh:
                    raise
            except Throttled as exc:
                gate = self.fetchers.gate
                raise gate.throttled(calendar.provider, calendar.integration_id, exc) from None
        raise AssertionError("unreachable")

    def _google(self, api: httpx.AsyncClient, token: str) -> GoogleChannelCalls:
        return GoogleChannelCalls(api, token, clock=self.clock,
                                  api_base_url=self.fetchers.google.api_base_url)  # fmt: skip

    async def _create(self, calendar: CalendarRef) -> Channel:
        now = self.now_ms()
        url = str(self.urls[calendar.provider])
        if calendar.provider == "google":
            channel_id = str(uuid.uuid4())
            secret = issue_token(self.keys, calendar.integration_id, channel_id)
            self.feed.channel_index[channel_id] = calendar.key  # its sync may come first
            try:
                made = await self._call(calendar, lambda api, token: self._google(api, token).watch(
                    calendar, channel_id, secret, url, self.google_ttl_s))  # fmt: skip
            except BaseException:
                self.feed.channel_index.pop(channel_id, None)
                raise
            if channel_id in self._synced:
                self._synced.discard(channel_id)
                made = dataclasses.replace(made, state="active")
            return made
        secret = issue_token(self.keys, calendar.integration_id, calendar.integration_id)
        sub = await self._call(calendar, lambda api, token: graph_channels.create_subscription(
            api, self.fetchers.graph.api_base_url, token, calendar,
            notification_url=url, lifecycle_url=url, client_state=secret, now_ms=now))  # fmt: skip
        return Channel(sub.id, calendar.key, "graph", sub.resource, sub.expires_ms, now, "active")

    async def _stop(self, calendar: CalendarRef, channel: Channel, counted: bool = True) -> None:
        """channels.stop / DELETE; an unknown channel counts as stopped."""
        if channel.provider == "google":
            await self._call(calendar, lambda api, token: self._google(api, token).stop(channel),
                             counted)  # fmt: skip
            return
        await self._call(calendar, lambda api, token: graph_channels.delete_subscription(
            api, self.fetchers.graph.api_base_url, token, channel.channel_id),
            counted)  # fmt: skip

    async def stop_orphan(
        self, provider: str, channel_id: str, resource_id: str | None, integration_id: str
    ) -> None:
        """Stop a channel that pushed with a valid MAC but that we do not hold (failures
        are logged and counted; a channel stopped once is not stopped again)."""
        if channel_id in self.feed.channel_index or channel_id in self._orphans:
            return
        if provider not in PROVIDERS or (provider == "google" and not resource_id):
            return
        calendar = CalendarRef(provider, integration_id, "", "")  # type: ignore[arg-type]
        orphan = Channel(channel_id, "", provider, resource_id or "", 0, 0)  # type: ignore[arg-type]
        self._orphans.add(channel_id)
        try:
            await self._stop(calendar, orphan, counted=False)
        except FetchError as exc:
            self._orphans.discard(channel_id)
            self._failed(f"orphan {channel_id}", exc)
