"""The Google and Graph fakes and the feed's environment pointed at them, for the end-to-end
tests (the feed reads its settings at start: a test may set more before it starts the feed)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from streams.dev.broker import free_port
from streams.dev.fakes.calendar_kit import CalendarFake
from streams.dev.fakes.google import GoogleCalendarFake
from streams.dev.fakes.graph import GraphFake
from streams.dev.fakes.kit import FakeServer

APP = {"client_id": "app", "client_secret": "app-secret"}
GOOGLE_CHANNEL_KEY = "calendar-channel-key-0123456789abcdef"
GOOGLE_SOURCES = {"gcal": {"method": "google_channel", "channel_keys": [GOOGLE_CHANNEL_KEY]}}
GRAPH_CHANNEL_KEY = "graph-channel-key-0123456789abcdef"
GRAPH_SOURCES = {"outlook": {"method": "graph_client_state", "channel_keys": [GRAPH_CHANNEL_KEY]}}


@contextmanager
def served_to_the_feed(
    monkeypatch: pytest.MonkeyPatch, fake: CalendarFake, *, token_path: str, channel_key: str,
    push_path: str,
) -> Iterator[int]:  # fmt: skip
    """Serve `fake` and point the feed's environment at it (the app's credentials, the fake's
    token endpoint and API, short debounces and maintenance intervals, the channel key, the
    push URL of the gateway's `push_path`); the port the gateway will listen on."""
    provider = fake.name.upper()
    gateway_port = free_port()
    with FakeServer(fake) as server:
        for name, value in {
            f"WEDSYNC_{provider}_CLIENT_ID": APP["client_id"],
            f"WEDSYNC_{provider}_CLIENT_SECRET": APP["client_secret"],
            f"WEDSYNC_{provider}_TOKEN_URL": server.url + token_path,
            f"WEDSYNC_{provider}_API_BASE_URL": server.url,
            "WEDSYNC_CALENDAR_FEED_DEBOUNCE_MS": "100",
            "WEDSYNC_CALENDAR_FEED_MAX_DEBOUNCE_MS": "500",
            "WEDSYNC_CALENDAR_FEED_CALENDARS_EVERY_S": "0.5",
            "WEDSYNC_CALENDAR_FEED_CHANNELS_EVERY_S": "1",
            "WEDSYNC_CALENDAR_FEED_CHANNEL_KEYS": json.dumps([channel_key]),
            f"WEDSYNC_CALENDAR_FEED_{provider}_PUSH_URL":
                f"http://127.0.0.1:{gateway_port}/webhooks/{push_path}",
        }.items():  # fmt: skip
            monkeypatch.setenv(name, value)
        yield gateway_port


@pytest.fixture
def google(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[GoogleCalendarFake, str, int]]:
    """(the fake, its URL, the port the gateway will listen on for its channel pushes)."""
    fake = GoogleCalendarFake(**APP)
    with served_to_the_feed(
        monkeypatch, fake, token_path="/token", channel_key=GOOGLE_CHANNEL_KEY, push_path="gcal"
    ) as port:
        yield fake, fake.base_url, port


@pytest.fixture
def graph(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[GraphFake, int]]:
    """(the fake, the port the gateway will listen on for its notifications)."""
    fake = GraphFake(**APP)
    with served_to_the_feed(
        monkeypatch, fake, token_path="/common/oauth2/v2.0/token",
        channel_key=GRAPH_CHANNEL_KEY, push_path="outlook",
    ) as port:  # fmt: skip
        yield fake, port


def vendor_token(base: str, refresh: str) -> str:
    """An access token of the vendor's own Google client (the same account)."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh, **APP}
    return str(httpx.post(f"{base}/token", data=form).json()["access_token"])
