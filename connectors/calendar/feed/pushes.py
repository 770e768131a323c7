"""Provider pushes (as the ingest gateway stored them) -> which calendars to fetch.

The gateway has verified every push (a channel token's MAC, Graph's clientState per item)
and stored it on `wedsync.ingest.webhooks`. A Google push names its channel
(X-Goog-Channel-ID) and the gateway adds the verified integration
(`x-wedsync-integration-id`); a Graph batch names a subscription and carries its clientState
(`v1.<integration id>.<MAC>`) per item. The channel registry (`CalendarFeed.channel_index`,
channel/subscription id -> calendar key) names the calendar; a channel it does not know
falls back to every calendar of the verified integration (a push is only a hint to fetch:
fetching one calendar too many costs one request, missing one costs a wedding).
A `sync` message only confirms a new Google channel; lifecycle events (`missed`,
`subscriptionRemoved`, `reauthorizationRequired`) fetch now and tell the channel manager.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from streams import metrics


class Feed(Protocol):
    channel_index: dict[str, str]

    def calendars_of(self, provider: str, integration_id: str) -> list[str]: ...

    def push(self, key: str, received_at_s: float | None = None) -> bool: ...


Lifecycle = Callable[[str, str, str], None]  # (calendar key, channel id, event)
# (provider, channel id, resource id, integration id): a verified channel we do not hold
Orphan = Callable[[str, str, str | None, str], None]


class PushRouter:
    def __init__(
        self, feed: Feed, on_lifecycle: Lifecycle | None = None, on_orphan: Orphan | None = None
    ) -> None:
        self.feed = feed
        self.on_lifecycle = on_lifecycle
        self.on_orphan = on_orphan
        self.unknown = 0

    def route(self, record: dict[str, Any]) -> list[str]:
        """The calendars `record` asked to fetch (and asked for them)."""
        received = record.get("received_at_ms")
        at = received / 1000 if isinstance(received, int) else None
        if record.get("verification") == "google_channel":
            keys = self._google(record.get("headers") or {})
            provider = "google"
        else:
            keys = self._graph(record.get("body") or b"")
            provider = "graph"
        for key in keys:
            self.feed.push(key, at)
        kind = "change" if keys else "unknown"
        metrics.CALENDAR_NOTIFICATIONS.labels(provider, kind).inc()
        if not keys:
            self.unknown += 1
        return keys

    def _google(self, headers: dict[str, str]) -> list[str]:
        channel = headers.get("x-goog-channel-id", "")
        if headers.get("x-goog-resource-state") == "sync":
            key = self.feed.channel_index.get(channel)
            if key is not None and self.on_lifecycle is not None:
                self.on_lifecycle(key, channel, "sync")
            return []
        integration = headers.get("x-wedsync-integration-id")
        self._orphan("google", channel, headers.get("x-goog-resource-id"), integration)
        return self._keys(channel, integration, "google")

    def _graph(self, body: bytes) -> list[str]:
        try:
            document = json.loads(body)
        except ValueError:
            return []
        items = document.get("value") if isinstance(document, dict) else None
        found: list[str] = []
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            subscription = str(item.get("subscriptionId") or "")
            state = str(item.get("clientState") or "")
            parts = state.split(".")
            integration = parts[1] if len(parts) == 3 and parts[0] == "v1" else None
            self._orphan("graph", subscription, None, integration)
            keys = self._keys(subscription, integration, "graph")
            lifecycle = item.get("lifecycleEvent")
            if isinstance(lifecycle, str) and self.on_lifecycle is not None:
                for key in keys:
                    self.on_lifecycle(key, subscription, lifecycle)
            found += [k for k in keys if k not in found]
        return found

    def _orphan(
        self, provider: str, channel: str, resource: str | None, integration: str | None
    ) -> None:
        """A verified push on a channel we do not hold (replaced, left by a crash between a
        create and its record): stop it, or they pile up (webhookdb's lesson)."""
        if channel and integration and channel not in self.feed.channel_index and self.on_orphan:
            self.on_orphan(provider, channel, resource, integration)

    def _keys(self, channel: str, integration: str | None, provider: str) -> list[str]:
        key = self.feed.channel_index.get(channel)
        if key is not None:
            return [key]
        if not integration:
            return []
        return self.feed.calendars_of(provider, integration)
