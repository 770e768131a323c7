"""The calendar feed on a thread of its own (its own event loop), for the integration tests."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from connectors.calendar.feed.engine import CalendarFeed
from connectors.calendar.feed.process import run_feed
from connectors.sources.webhooks.config import parse_gateway_config
from connectors.sources.webhooks.gateway import running_gateway
from streams.app.calendar_feed import feed_setup
from streams.kafka.codec import TopicCodecs
from streams.settings import Settings


class FeedThread:
    """The feed, and with `gateway_sources` the ingest gateway (on `gateway_port`) that
    stores the providers' pushes for it, on one event loop in a thread."""

    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        credentials: Any,
        *,
        gateway_sources: dict[str, Any] | None = None,
        gateway_port: int = 0,
    ) -> None:
        self.settings, self.bootstrap, self.credentials = settings, bootstrap, credentials
        self.gateway_sources, self.gateway_port = gateway_sources, gateway_port
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop_event: asyncio.Event | None = None
        self.feeds: list[CalendarFeed] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name="calendar-feed", daemon=True)

    def _main(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self.stop_event = asyncio.Event()
            async with contextlib.AsyncExitStack() as stack:
                if self.gateway_sources is not None:
                    config = parse_gateway_config({"sources": self.gateway_sources}, {})
                    codecs = TopicCodecs.from_settings(self.settings)
                    await stack.enter_async_context(running_gateway(
                        config, self.bootstrap, codecs, port=self.gateway_port
                    ))  # fmt: skip
                http = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
                await run_feed(
                    self.settings, self.bootstrap, self.stop_event, feed_setup(),
                    credentials=self.credentials, http=http, feed_out=self.feeds,
                )  # fmt: skip

        try:
            asyncio.run(main())
        except BaseException as exc:
            self.error = exc

    def start(self, timeout: float = 90.0) -> CalendarFeed:
        """Start it; return the feed once it has connected its calendars."""
        self.launch()
        wait(lambda: self.error is not None or (self.feeds and self.feeds[0].calendars), timeout)
        if self.error is not None:
            raise self.error
        return self.feeds[0]

    def call(self, fn: Callable[[], Any]) -> None:
        """Run `fn` on the feed's loop."""
        assert self.loop is not None
        self.loop.call_soon_threadsafe(fn)

    def launch(self) -> None:
        """Start it without waiting (a standby feed connects nothing until it is active)."""
        self.thread.start()

    def stop(self) -> None:
        if not self.thread.is_alive():
            return
        if self.loop is not None and self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(30)


def wait(predicate: Callable[[], Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)
