"""Google push channels over HTTP: create one (`events.watch`) and stop one
(`channels.stop`), with an injected httpx.AsyncClient and the integration's access token.

`watch` answers the new channel (`pending_sync`: its `sync` notification may already be on
its way, even before this answer) or raises a `FetchError` (`channel_wire.error_for`; a
timeout, a connection failure or an unreadable answer is FetchFailed). `stop` returns once
Google stopped the channel; a 404 also returns: Google no longer knows the channel (expired,
stopped before, or made by another user), so it notifies no more either way. The access token
is never logged nor put in an exception.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from streams.logic.calendar.channels import Channel
from streams.logic.calendar.rounds import CalendarRef

from connectors.calendar.feed_errors import FetchFailed
from connectors.calendar.google import channel_wire
from connectors.calendar.google.wire import Request


class GoogleChannelCalls:
    """events.watch and channels.stop for one integration's access token."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        access_token: str,
        *,
        api_base_url: str = "https://www.googleapis.com",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._token = access_token
        self._base = api_base_url.rstrip("/")
        self._clock = clock

    async def watch(
        self, calendar: CalendarRef, channel_id: str, token: str, address: str, ttl_s: int
    ) -> Channel:
        """Create a channel on `calendar` notifying `address` with `token`."""
        request = channel_wire.watch_request(calendar.calendar_id, channel_id, token, address,
                                             ttl_s)  # fmt: skip
        answer = await self._call(request)
        if not answer.is_success:
            raise self._error(answer)
        try:
            body = answer.json()
            return channel_wire.parse_watch(body, calendar.key, int(self._clock() * 1000))
        except ValueError as exc:  # not JSON, or a channel without its ids
            raise FetchFailed(f"unreadable watch answer: {type(exc).__name__}") from None

    async def stop(self, channel: Channel) -> None:
        """Stop `channel` (done when Google answers 404: it is gone already)."""
        answer = await self._call(channel_wire.stop_request(channel))
        if answer.is_success or answer.status_code == 404:
            return
        raise self._error(answer)

    async def _call(self, request: Request) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._token}", **request.headers}
        try:
            return await self._client.request(
                request.method, self._base + request.path, headers=headers, json=request.json
            )
        except httpx.HTTPError as exc:
            raise FetchFailed(f"Google channel call failed: {type(exc).__name__}") from None

    def _error(self, answer: httpx.Response) -> Exception:
        body: Any
        try:
            body = answer.json()
        except ValueError:
            body = None
        retry_after = answer.headers.get("Retry-After")
        return channel_wire.error_for(answer.status_code, body, retry_after, now_s=self._clock())
