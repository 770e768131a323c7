"""The Google fake and the feed's environment pointed at it, for the Google end-to-end tests
(the feed reads its settings at start: a test may set more before it starts the feed);
Radicale with one vendor calendar, polled every 3 s, for the CalDAV ones."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from streams.dev.broker import free_port
from streams.dev.fakes.caldav import RadicaleServer
from streams.dev.fakes.google import GoogleCalendarFake
from streams.dev.fakes.kit import FakeServer
from streams.dev.scenario import Endpoints

APP = {"client_id": "app", "client_secret": "app-secret"}
GOOGLE_CHANNEL_KEY = "calendar-channel-key-0123456789abcdef"
CALDAV_USER, CALDAV_PASSWORD = "photo", "app-specific-pw-9911"
GOOGLE_SOURCES = {"gcal": {"method": "google_channel", "channel_keys": [GOOGLE_CHANNEL_KEY]}}


@pytest.fixture
def google(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[GoogleCalendarFake, str, int]]:
    """(the fake, its URL, the port the gateway will listen on for its channel pushes)."""
    fake = GoogleCalendarFake(**APP)
    gateway_port = free_port()
    with FakeServer(fake) as server:
        for name, value in {
            "WEDSYNC_GOOGLE_CLIENT_ID": APP["client_id"],
            "WEDSYNC_GOOGLE_CLIENT_SECRET": APP["client_secret"],
            "WEDSYNC_GOOGLE_TOKEN_URL": f"{server.url}/token",
            "WEDSYNC_GOOGLE_API_BASE_URL": server.url,
            "WEDSYNC_CALENDAR_FEED_DEBOUNCE_MS": "100",
            "WEDSYNC_CALENDAR_FEED_MAX_DEBOUNCE_MS": "500",
            "WEDSYNC_CALENDAR_FEED_CALENDARS_EVERY_S": "0.5",
            "WEDSYNC_CALENDAR_FEED_CHANNELS_EVERY_S": "1",
            "WEDSYNC_CALENDAR_FEED_CHANNEL_KEYS": json.dumps([GOOGLE_CHANNEL_KEY]),
            "WEDSYNC_CALENDAR_FEED_GOOGLE_PUSH_URL": f"http://127.0.0.1:{gateway_port}/webhooks/gcal",
        }.items():
            monkeypatch.setenv(name, value)
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
