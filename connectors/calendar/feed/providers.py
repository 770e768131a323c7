"""A fetch round per provider, with the integration's credentials (the same rows, OAuth
client and token cache rules as the calendar sinks: `connectors.sinks.oauth`).

Google and Graph: an access token from the stored refresh token; a 401 from the API is
answered by one forced refresh and one more try, and a refused refresh (`invalid_grant`)
is `ReauthRequired`. CalDAV: Basic auth with `settings.username` and the stored password,
the collection URL resolved like the CalDAV sink does (under the integration's home only).

Every API request (not the token endpoint's) passes `gate` (`connectors.calendar.feed.gate`):
`api(calendar)` is the client the fetchers and the channel calls use. A provider's Throttled
is charged to the account (`gate.throttled`: its later requests wait out the Retry-After or
the backoff, whichever is longer) and raised with that wait, so the scheduler puts the round
off as long; the round is not lost, it runs from the same cursor once the wait is over.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

import httpx
from streams.logic.calendar.rounds import CalendarRef, FetchRound, Reason

from connectors.calendar.caldav import fetch as caldav_fetch
from connectors.calendar.caldav import wire as caldav_wire
from connectors.calendar.caldav.config import CalDavConfig
from connectors.calendar.feed.gate import RequestGate
from connectors.calendar.feed_errors import CalendarGone, ReauthRequired, Throttled, from_answer
from connectors.calendar.google import fetch as google_fetch
from connectors.calendar.google.config import GoogleConfig
from connectors.calendar.graph import fetch as graph_fetch
from connectors.calendar.graph.config import GraphConfig
from connectors.sinks.answer import Answer
from connectors.sinks.base import DeliveryContext
from connectors.sinks.credentials import CredentialStore, MissingCredential
from connectors.sinks.oauth import OAuthClient

Window = tuple[int, int]
Fetch = Callable[[CalendarRef, str | None, Window, Reason], Awaitable[FetchRound]]


class ProviderFetchers:
    """`fetch(calendar, cursor, window, reason)` for every provider."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        credentials: CredentialStore,
        *,
        google: GoogleConfig,
        graph: GraphConfig,
        caldav: CalDavConfig,
        gate: RequestGate | None = None,
    ) -> None:
        """The configs are parsed at the process's edge (streams/app/calendar_feed.py)."""
        self.http = http
        self.gate = RequestGate() if gate is None else gate
        self.credentials = credentials
        self.google, self.graph, self.caldav = google, graph, caldav
        self.oauth = {
            "google": OAuthClient(
                http,
                token_url=self.google.token_url,
                client_id=self.google.client_id,
                client_secret=self.google.client_secret,
                prefix="google",
            ),
            "graph": OAuthClient(
                http,
                token_url=self.graph.token_url,
                client_id=self.graph.client_id,
                client_secret=self.graph.client_secret,
                prefix="graph",
                scope=self.graph.scope,
            ),
        }

    async def fetch(
        self, calendar: CalendarRef, cursor: str | None, window: Window, reason: Reason
    ) -> FetchRound:
        try:
            if calendar.provider == "caldav":
                got = await self._caldav(calendar, cursor, window, reason)
            else:
                got = await self._oauth(calendar, cursor, window, reason)
        except MissingCredential as exc:
            raise ReauthRequired(f"{calendar.provider}: {exc}") from None
        except Throttled as exc:
            raise self.gate.throttled(calendar.provider, calendar.integration_id, exc) from None
        self.gate.succeeded(calendar.provider, calendar.integration_id)
        return got

    def api(self, calendar: CalendarRef) -> httpx.AsyncClient:
        """The client of `calendar`'s API requests: each one waits for the account's limits."""
        return self.gate.client(self.http, calendar.provider, calendar.integration_id)

    async def token(self, calendar: CalendarRef, *, refresh: bool = False) -> str:
        """An access token for an OAuth calendar; ReauthRequired (or the classified
        refusal) when the token endpoint says no."""
        ctx = DeliveryContext(self.credentials, idempotency_key="", attempt=0, refresh=refresh)
        got = await self.oauth[calendar.provider].access_token(calendar.integration_id, ctx)
        if isinstance(got, Answer):
            raise from_answer(got, f"{calendar.provider} token")
        return got

    async def _oauth(
        self, calendar: CalendarRef, cursor: str | None, window: Window, reason: Reason
    ) -> FetchRound:
        api = self.api(calendar)
        for refresh in (False, True):
            token = await self.token(calendar, refresh=refresh)
            try:
                if calendar.provider == "google":
                    return await google_fetch.fetch_round(
                        api, self.google.api_base_url, token, calendar, cursor, window, reason
                    )
                return await graph_fetch.fetch_round(
                    api, self.graph.api_base_url, token, calendar, cursor, window, reason
                )
            except ReauthRequired:
                if refresh:
                    raise
        raise AssertionError("unreachable")

    async def _caldav(
        self, calendar: CalendarRef, cursor: str | None, window: Window, reason: Reason
    ) -> FetchRound:
        row = await self.credentials.get("integration", calendar.integration_id)
        settings = row.get("settings")
        home = caldav_wire.home_url(row.get("webhook_url"), settings, self.caldav.default_home_url)
        user = caldav_wire.username(settings)
        if home is None or user is None:
            raise ReauthRequired("caldav: the integration has no CalDAV URL or settings.username")
        password = row.secret("api_key", f"integration {calendar.integration_id}")
        try:
            url = caldav_wire.collection_url(home, calendar.calendar_id)
        except caldav_wire.CollectionRefused as exc:
            raise CalendarGone(f"caldav: {exc}") from None
        at_url = dataclasses.replace(calendar, calendar_id=url)
        got = await caldav_fetch.fetch_round(
            self.api(calendar), httpx.BasicAuth(user, password), at_url, cursor, window, reason
        )
        return dataclasses.replace(got, calendar=calendar)

    async def aclose(self) -> None:
        await self.http.aclose()
