"""The calendar connector: dispatches each record to its provider's connector by
`record["provider"]`. Targets, limits and credential keys are the provider's."""

from __future__ import annotations

from typing import Any

from streams.topics import Destination

from connectors.sinks.answer import Answer, fatal
from connectors.sinks.base import Connector, DeliveryContext, Limits, SinkEnv


class CalendarConnector:
    destination = Destination.CALENDAR

    def __init__(self, providers: dict[str, Connector]) -> None:
        self.providers = providers

    def _provider(self, record: dict[str, Any]) -> Connector | None:
        return self.providers.get(str(record.get("provider")))

    def target(self, record: dict[str, Any]) -> str:
        return f"calendar:{record.get('integration_id') or record.get('calendar_id')}"

    def limit(self, record: dict[str, Any]) -> tuple[str, Limits]:
        provider = self._provider(record)
        if provider is None:
            return ("calendar:unknown", Limits())
        return provider.limit(record)

    def credential_key(self, record: dict[str, Any]) -> str | None:
        provider = self._provider(record)
        return None if provider is None else provider.credential_key(record)

    async def deliver(self, record: dict[str, Any], ctx: DeliveryContext) -> Answer:
        provider = self._provider(record)
        if provider is None:
            return fatal("calendar.unknown_provider", f"no connector for {record.get('provider')}")
        return await provider.deliver(record, ctx)

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()


def build(env: SinkEnv) -> CalendarConnector:
    from connectors.calendar.caldav.sink import build as caldav
    from connectors.calendar.google.sink import build as google
    from connectors.calendar.graph.sink import build as graph

    return CalendarConnector({"google": google(env), "graph": graph(env), "caldav": caldav(env)})
