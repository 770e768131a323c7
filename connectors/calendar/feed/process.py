"""The calendar feed process's wiring (`wedsync calendar-feed`, streams/app/calendar_feed.py):
vendors' own calendars (Google, Microsoft, CalDAV/iCloud) into busy intervals for the
double-booking detector.

One active process: every feed joins the leader group (`leader.py`); the member holding its
lease runs the feed, the others stand by and take over (within the session timeout, at once
when the holder stops) with everything read afresh. A term that ends because the lease is
gone abandons its rounds in flight uncommitted; SIGTERM lets them finish.

A term starts with the routing state (the worker's changelog: which calendars are connected,
which vendors have a wedding soon), every calendar's sync state, what we wrote in vendors'
calendars (`OwnedFeed`, read to its end so that no round takes our events for theirs), then
a first round for every calendar (it catches up with whatever changed while the feed was
down, so a push lost in a restart or a hand-over loses nothing). Then pushes from the ingest
gateway, reconciles and polls.
SIGTERM/SIGINT: the rounds in flight finish (or are abandoned uncommitted) and it exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from streams import metrics
from streams.kafka.connection import Kafka
from streams.settings import Settings

from connectors.calendar.caldav.config import CalDavConfig
from connectors.calendar.feed.config import CalendarFeedConfig
from connectors.calendar.google.config import GoogleConfig
from connectors.calendar.graph.config import GraphConfig
from connectors.sinks.settings import SinkSettings

log = logging.getLogger("wedsync.calendar.feed")


@dataclass(frozen=True)
class FeedSetup:
    """Every settings model the feed needs, parsed at the process's edge
    (streams/app/calendar_feed.py `feed_setup`; the demo builds its own)."""

    config: CalendarFeedConfig
    sink: SinkSettings  # credentials (the platform DSN) and the outbound policy
    google: GoogleConfig
    graph: GraphConfig
    caldav: CalDavConfig


async def run_feed(
    settings: Settings,
    kafka: Kafka,
    stop: asyncio.Event,
    setup: FeedSetup,
    *,
    credentials: Any = None,
    http: Any = None,
    feed_out: list[Any] | None = None,
) -> None:
    """The feed until `stop` (tests and the demo pass a credential store, an http client, a
    list that receives the running `CalendarFeed`, and a config)."""
    from streams.kafka.admin import create_topics
    from streams.logic.calendar.limits import Limiter
    from streams.routing.process import wait_for_state_agent

    from connectors.calendar.feed.gate import RequestGate
    from connectors.calendar.feed.leader import Leadership
    from connectors.calendar.feed.providers import ProviderFetchers
    from connectors.sinks.credentials import PostgresCredentialStore
    from connectors.sinks.outbound import http_client

    config, sink_settings = setup.config, setup.sink
    if credentials is None:
        dsn = sink_settings.platform_dsn
        if dsn is None:
            from streams.errors import ConfigurationError

            raise ConfigurationError(
                "WEDSYNC_SINK_PLATFORM_DSN is not set: the calendar feed reads the calendars' "
                "credentials from the platform database, like the calendar sinks"
            )
        credentials = PostgresCredentialStore(
            dsn.get_secret_value(), ttl_s=sink_settings.credential_ttl_s
        )
    http = http or http_client(sink_settings.outbound_policy())
    create_topics(kafka, replication_factor=settings.replication_factor)
    await asyncio.to_thread(wait_for_state_agent, kafka, settings.app_id)
    gate = RequestGate(Limiter(config.rates().limits()), max_wait_s=config.max_wait_s)
    fetchers = ProviderFetchers(
        http, credentials, google=setup.google, graph=setup.graph, caldav=setup.caldav, gate=gate
    )
    lease = Leadership(kafka, settings.app_id, session_timeout_ms=config.leader_session_timeout_ms)
    lease.start()
    try:
        while not stop.is_set():
            await _first(lease.active, stop)
            if stop.is_set():
                break
            term = lease.generation
            try:
                await _active(settings, kafka, stop, lease, config, fetchers, feed_out)
            finally:
                lease.stood_down(term)
            if not stop.is_set():
                log.info("calendar feed: standing by")
    finally:
        await lease.close()
        await fetchers.aclose()


async def _first(*events: asyncio.Event) -> None:
    """Return once any of `events` is set."""
    waits = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()


async def _active(
    settings: Settings,
    kafka: Kafka,
    stop: asyncio.Event,
    lease: Any,
    config: CalendarFeedConfig,
    fetchers: Any,
    feed_out: list[Any] | None,
) -> None:
    """One term as the active feed: everything read afresh (the predecessor may have written
    since), until `stop` (the rounds in flight finish) or the lease is gone (they are
    abandoned uncommitted: a round's sync state is written only after its records)."""
    from streams.kafka.codec import TopicCodecs
    from streams.logic.calendar.echo import OwnedIndex
    from streams.logic.calendar.schedule import MINUTE, Scheduler
    from streams.routing.state_reader import ChangelogState

    from connectors.calendar.feed.channels import ChannelManager
    from connectors.calendar.feed.connected import connected
    from connectors.calendar.feed.engine import CalendarFeed, FeedConfig
    from connectors.calendar.feed.kafka_io import (
        KafkaRoundWriter,
        OwnedFeed,
        PushReader,
        read_sync_states,
    )
    from connectors.calendar.feed.pushes import PushRouter

    codecs = TopicCodecs.from_settings(settings)
    state = ChangelogState(kafka, settings.app_id)
    tables = await asyncio.to_thread(state.load)
    owned = OwnedIndex()
    owned_feed = OwnedFeed(kafka, codecs, owned, f"{settings.app_id}-calendar-feed-owned")
    writer = KafkaRoundWriter(kafka, codecs, f"{settings.app_id}-calendar-feed")
    await asyncio.to_thread(writer.start)
    feed = CalendarFeed(
        fetchers.fetch,
        writer,
        owned=owned,
        config=FeedConfig(
            concurrency=config.concurrency,
            horizon_ahead_ms=config.horizon_days * 24 * 3600 * 1000,
            reauth_retry_ms=int(config.reauth_retry_min * MINUTE),
            intervals=config.intervals(),
        ),
        scheduler=Scheduler(debounce_ms=config.debounce_ms, max_debounce_ms=config.max_debounce_ms),
    )
    feed.load(await asyncio.to_thread(read_sync_states, kafka, settings.app_id))
    channels = ChannelManager(
        feed,
        fetchers,
        keys=[k.get_secret_value().encode() for k in config.channel_keys],
        google_push_url=config.google_push_url,
        graph_push_url=config.graph_push_url,
    )
    channels.load()
    if feed_out is not None:
        feed_out.append(feed)
    loop = asyncio.get_running_loop()
    orphans: set[asyncio.Task[None]] = set()

    def stop_orphan(provider: str, channel: str, resource: str | None, integration: str) -> None:
        task = asyncio.create_task(channels.stop_orphan(provider, channel, resource, integration))
        orphans.add(task)
        task.add_done_callback(orphans.discard)

    router = PushRouter(feed, on_lifecycle=channels.on_lifecycle, on_orphan=stop_orphan)

    def hand_over(record: dict[str, Any]) -> None:  # the reader's thread -> the loop
        loop.call_soon_threadsafe(router.route, record)

    pushes = PushReader(kafka, codecs, f"{settings.app_id}-calendar-feed-pushes", hand_over)
    await asyncio.to_thread(owned_feed.load)  # before any round: our Graph events, by id
    await feed.connect(connected(tables, feed.now_ms()))
    pushes.start()
    log.info("calendar feed: active, %d calendars connected", len(feed.calendars))
    over = asyncio.Event()
    chores = asyncio.create_task(_chores(feed, state, config, over, channels))
    term = asyncio.create_task(_term_over(feed, stop, lease, over))
    try:
        await feed.run(over)
    finally:
        term.cancel()
        chores.cancel()
        for task in list(orphans):
            task.cancel()
        pushes.close()
        owned_feed.close()
        state.close()
        writer.close()
        metrics.CALENDAR_STATUS.clear()  # a standby reports no calendars


async def _term_over(feed: Any, stop: asyncio.Event, lease: Any, over: asyncio.Event) -> None:
    """Set `over` at `stop` or when the lease is gone; then the rounds in flight are
    abandoned (uncommitted), a stop lets them finish."""
    await _first(stop, lease.standby)
    over.set()
    feed.wake.set()
    if not stop.is_set():
        for task in list(feed.tasks):
            task.cancel()


async def _chores(feed: Any, state: Any, config: Any, stop: asyncio.Event, channels: Any) -> None:
    """Keep push channels alive, re-read the connected calendars and re-evaluate health, on
    their timers (channels only after the first connect: before it, every calendar would
    look disconnected and have its channels stopped)."""
    from connectors.calendar.feed.connected import connected

    next_health = time.monotonic() + config.health_every_s
    next_channels = time.monotonic()
    while not stop.is_set():
        try:
            if time.monotonic() >= next_channels:
                next_channels = time.monotonic() + config.channels_every_s
                await channels.maintain()
            await asyncio.sleep(config.calendars_every_s)
            await feed.connect(connected(state.tables, feed.now_ms()))
            if time.monotonic() >= next_health:
                next_health = time.monotonic() + config.health_every_s
                await feed.check_health()
        except Exception:
            log.exception("calendar feed: chore failed; going on")
