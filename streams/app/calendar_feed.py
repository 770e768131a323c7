"""`wedsync calendar-feed`: vendors' own calendars (Google, Microsoft, CalDAV/iCloud) into
busy intervals for the double-booking detector (connectors/calendar/feed/process.py does the
wiring). SIGTERM/SIGINT: the rounds in flight finish and it exits 0."""

from __future__ import annotations

from typing import TYPE_CHECKING

from streams.settings import Settings

if TYPE_CHECKING:
    from connectors.calendar.feed.process import FeedSetup


def feed_setup() -> FeedSetup:
    """The feed's settings from the environment (WEDSYNC_CALENDAR_FEED_*, the calendar
    sinks' WEDSYNC_GOOGLE_* / WEDSYNC_GRAPH_* / WEDSYNC_CALDAV_*, and WEDSYNC_SINK_*)."""
    from connectors.calendar.caldav.config import CalDavConfig
    from connectors.calendar.feed.config import CalendarFeedConfig
    from connectors.calendar.feed.process import FeedSetup
    from connectors.calendar.google.config import GoogleConfig
    from connectors.calendar.graph.config import GraphConfig
    from connectors.sinks.settings import SinkSettings

    return FeedSetup(CalendarFeedConfig(), SinkSettings(), GoogleConfig(), GraphConfig(),
                     CalDavConfig())  # fmt: skip


def run_calendar_feed(settings: Settings) -> int:
    """`wedsync calendar-feed` until SIGTERM/SIGINT."""
    from connectors.calendar.feed.process import run_feed

    from streams import metrics
    from streams.app import shell
    from streams.app.broker import kafka_broker

    metrics.export("calendar")
    with kafka_broker(settings, f"{settings.app_id}-calendar-feed") as kafka:
        shell.start(settings, kafka, access="calendar-feed", metrics="calendar")
        setup = feed_setup()
        return shell.run_async(lambda stop: run_feed(settings, kafka, stop, setup))
