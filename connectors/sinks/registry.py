"""Which connector delivers each destination kind: an explicit
mapping (STYLE.md 7), imported lazily so `wedsync sink slack` does not import CalDAV code.
A test checks every connector folder is registered here."""

from __future__ import annotations

import importlib
from typing import Any

from streams.topics import Destination

# Destination -> "module:factory"; factory(env: SinkEnv) -> Connector
CONNECTORS: dict[Destination, str] = {
    Destination.SLACK: "connectors.sinks.slack.sink:build",
    Destination.EMAIL: "connectors.sinks.email.sink:build",
    Destination.SMS: "connectors.sinks.sms.sink:build",
    Destination.CRM: "connectors.sinks.crm.sink:build",
    Destination.WEBHOOK: "connectors.sinks.webhook.sink:build",
    Destination.CALENDAR: "connectors.calendar.sink:build",
}


def load(path: str) -> Any:
    """The object a "module:name" path names."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)
