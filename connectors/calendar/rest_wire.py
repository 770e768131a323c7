"""Pure pieces the JSON calendar wires (Google Calendar v3, Microsoft Graph) share: one API
call as data (`Request`) and the record they cannot turn into an event (`BadRecord`). The
I/O that sends a `Request` is `connectors.calendar.rest`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class BadRecord(ValueError):
    """The record cannot become the provider's event (unknown time zone, missing field)."""


@dataclass(frozen=True)
class Request:
    """One API call: method, path (under the API base URL), query, extra headers, JSON body."""

    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    json: dict[str, Any] | None = None
