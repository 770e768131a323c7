"""What the feed keeps per calendar, written with every round to the compacted
`wedsync.calendar.sync_state` (JSON, keyed by calendar key) and read back whole at start."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from streams.logic.calendar.differ import Known
from streams.logic.calendar.health import STATUSES, Status


@dataclass
class CalendarSync:
    key: str
    cursor: str | None = None  # the provider's sync token / delta link / CalDAV token
    known: Known = field(default_factory=Known)
    version: int = 0  # fetch rounds written
    window_start_ms: int = 0  # the horizon the cursor was made with (fixed at a full sync)
    window_end_ms: int = 0
    baseline_at_ms: int = 0  # when the last full sync ran (re-baselined monthly)
    last_success_ms: int | None = None
    added_ms: int = 0
    status: Status = "polling_only"
    status_since_ms: int = 0
    reauth: bool = False
    gone: bool = False
    failures: int = 0
    channels: list[dict[str, Any]] = field(default_factory=list)  # push channels of it
    # the reconcile/poll interval the feed fetches it at now (the SLA agent's staleness
    # clock, streams/logic/calendar/health_book.py); None on states written before it
    interval_ms: int | None = None

    def to_bytes(self) -> bytes:
        body = asdict(self)
        body["known"] = self.known.to_json()
        return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> CalendarSync:
        """ValueError when the record is not a sync state."""
        body = json.loads(raw)
        if not isinstance(body, dict) or not isinstance(body.get("key"), str):
            raise ValueError("not a calendar sync state")
        status = body.get("status")
        return cls(
            key=body["key"],
            cursor=body.get("cursor") if isinstance(body.get("cursor"), str) else None,
            known=Known.from_json(body.get("known")),
            version=int(body.get("version") or 0),
            window_start_ms=int(body.get("window_start_ms") or 0),
            window_end_ms=int(body.get("window_end_ms") or 0),
            baseline_at_ms=int(body.get("baseline_at_ms") or 0),
            last_success_ms=body.get("last_success_ms"),
            added_ms=int(body.get("added_ms") or 0),
            status=status if status in STATUSES else "polling_only",
            status_since_ms=int(body.get("status_since_ms") or 0),
            reauth=bool(body.get("reauth")),
            gone=bool(body.get("gone")),
            failures=int(body.get("failures") or 0),
            channels=[c for c in body.get("channels") or [] if isinstance(c, dict)],
            interval_ms=int(body["interval_ms"]) if body.get("interval_ms") else None,
        )
