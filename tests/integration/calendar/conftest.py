"""The Google fake and the feed's environment pointed at it, for the Google end-to-end tests
(the feed reads its settings at start: a test may set more before it starts the feed); the
same for the Graph fake; Radicale with one vendor calendar, polled every 3 s, for CalDAV."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from streams.dev.broker import free_port
from streams.dev.fakes.caldav import RadicaleServer
from streams.dev.fakes.google import GoogleCalendarFake
from streams.dev.fakes.graph import GraphFake
from streams.dev.fakes.kit import FakeServer
from streams.dev.scenario import Endpoints
from streams.kafka.codec import TopicCodecs
from streams.settings import Settings

from tests.integration.calendar.pipeline import EndToEnd
from tests.integration.cdc_support import PlatformDb

APP = {"client_id": "app", "client_secret": "app-secret"}
GOOGLE_CHANNEL_KEY = "calendar-channel-key-0123456789abcdef"
GRAPH_CHANNEL_KEY = "graph-channel-key-0123456789abcdef"
GRAPH_SOURCES = {"outlook": {"method": "graph_client_state", "channel_keys": [GRAPH_CHANNEL_KEY]}}
GOOGLE_SOURCES = {"gcal": {"method": "google_channel", "channel_keys": [GOOGLE_CHANNEL_KEY]}}
CALDAV_USER, CALDAV_PASSWORD = "photo", "app-specific-pw-9911"
PUSH_FEED = {  # a push is fetched 0.1 s later; channels made, renewed and stopped every second
    "WEDSYNC_CALENDAR_FEED_DEBOUNCE_MS": "100",
    "WEDSYNC_CALENDAR_FEED_MAX_DEBOUNCE_MS": "500",
    "WEDSYNC_CALENDAR_FEED_CALENDARS_EVERY_S": "0.5",
    "WEDSYNC_CALENDAR_FEED_CHANNELS_EVERY_S": "1",
}


def _push_provider(
    monkeypatch: pytest.MonkeyPatch, provider: str, token_url: str, api_base_url: str,
    channel_key: str, push_url: str,
) -> None:  # fmt: skip
    """The provider's client settings (`WEDSYNC_<provider>_*`, the app's client) and the
    feed's channels with it, their pushes fetched at once."""
    for name, value in {
        f"WEDSYNC_{provider}_CLIENT_ID": APP["client_id"],
        f"WEDSYNC_{provider}_CLIENT_SECRET": APP["client_secret"],
        f"WEDSYNC_{provider}_TOKEN_URL": token_url,
        f"WEDSYNC_{provider}_API_BASE_URL": api_base_url,
        **PUSH_FEED,
        "WEDSYNC_CALENDAR_FEED_CHANNEL_KEYS": json.dumps([channel_key]),
        f"WEDSYNC_CALENDAR_FEED_{provider}_PUSH_URL": push_url,
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def e2e(
    platform: PlatformDb, kafka_bootstrap: str, settings: Settings, codecs: TopicCodecs
) -> EndToEnd:
    return EndToEnd(platform, kafka_bootstrap, settings, codecs)


@pytest.fixture
def google(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[GoogleCalendarFake, str, int]]:
    """(the fake, its URL, the port the gateway will listen on for its channel pushes)."""
    fake = GoogleCalendarFake(**APP)
    gateway_port = free_port()
    with FakeServer(fake) as server:
        push = f"http://127.0.0.1:{gateway_port}/webhooks/gcal"
        _push_provider(monkeypatch, "GOOGLE", f"{server.url}/token", server.url,
                       GOOGLE_CHANNEL_KEY, push)  # fmt: skip
        yield fake, server.url, gateway_port


def vendor_calendar(calendar_type: str, secret: str) -> Endpoints:
    """The photographer's calendar integration of a Google or Microsoft account (its refresh
    token), its primary calendar, in London."""
    where = {"calendar_id": "primary", "time_zone": "Europe/London"}
    return Endpoints(calendar_type=calendar_type, calendar_secret=secret, calendar_settings=where)


def caldav_calendar(collection: str, put: dict[str, str]) -> Endpoints:
    """The photographer's CalDAV calendar `collection` holding the `put` files (name -> iCal)."""
    auth = (CALDAV_USER, CALDAV_PASSWORD)
    for name, ics in put.items():
        answer = httpx.put(collection + name, content=ics, auth=auth,
                           headers={"Content-Type": "text/calendar"})  # fmt: skip
        assert answer.status_code in (201, 204), answer.text
    return Endpoints(
        calendar_type="caldav", calendar_url=collection, calendar_secret=CALDAV_PASSWORD,
        calendar_settings={"username": CALDAV_USER, "calendar_id": "",
                           "time_zone": "Europe/London"},
    )  # fmt: skip


def vendor_token(base: str, refresh: str) -> str:
    """An access token of the vendor's own Google client (the same account)."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh, **APP}
    return str(httpx.post(f"{base}/token", data=form).json()["access_token"])


@pytest.fixture
def radicale(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[RadicaleServer, str]]:
    """(Radicale, the URL of the vendor's calendar collection)."""
    with RadicaleServer(users={CALDAV_USER: CALDAV_PASSWORD}) as server:
        collection = server.make_calendar(CALDAV_USER, "own")
        monkeypatch.setenv("WEDSYNC_CALENDAR_FEED_POLL_MIN", "0.05")  # 3 s polls
        monkeypatch.setenv("WEDSYNC_CALENDAR_FEED_CALENDARS_EVERY_S", "0.5")
        yield server, collection


@pytest.fixture
def graph(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[GraphFake, int]]:
    """(the Graph fake, the port the gateway will listen on for its notifications)."""
    fake = GraphFake(client_id=APP["client_id"], client_secret=APP["client_secret"])
    port = free_port()
    with FakeServer(fake) as server:
        push = f"http://127.0.0.1:{port}/webhooks/outlook"
        _push_provider(monkeypatch, "GRAPH", f"{server.url}/common/oauth2/v2.0/token",
                       server.url, GRAPH_CHANNEL_KEY, push)  # fmt: skip
        yield fake, port
