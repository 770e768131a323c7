"""Pure pieces the JSON calendar wires (Google Calendar v3, Microsoft Graph) share: one API
call as data (`Request`), the record they cannot turn into an event (`BadRecord`) and the
human message of a refusal (`refusal`). The I/O that sends a `Request` is
`connectors.calendar.rest`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connectors.sinks.answer import Verdict


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


def refusal(provider: str, verdict: Verdict, status: int) -> str:
    """What `provider` (``Google``, ``Graph``) refusing with `verdict` means, for humans: a
    refused access token, or a refused request; nothing for a transient answer."""
    if verdict is Verdict.REAUTH:
        return f"{provider} refused the access token"
    if verdict is Verdict.FATAL:
        return f"{provider} refused the request ({status})"
    return ""
