"""The SLA agent's records and gauges of connected calendars (streams/logic/calendar/
health_book.py computes them): a health record per calendar on `wedsync.sla.health` (key
`calendar:<calendar key>`, the `calendar` field of sla_health v2 set; a tombstone when it is
disconnected), a `state_changed` event on `wedsync.sla.events` when its status changes, and
`wedsync_sla_calendars{provider,status}`."""

from __future__ import annotations

import logging
from typing import Any

from streams import metrics
from streams.logic.calendar import health
from streams.logic.calendar.health_book import PROVIDERS, CalendarHealth, HealthBook, StatusChange

log = logging.getLogger(__name__)
SCORE = {"healthy": 100.0, "degraded": 50.0, "failing": 0.0}


def health_id(calendar_key: str) -> str:
    """The `integration_id` (and Kafka key) of a calendar's health records and events."""
    return f"calendar:{calendar_key}"


def health_record(h: CalendarHealth, now_ms: int) -> dict[str, Any]:
    state = h.overall
    return {
        "event_id": f"{health_id(h.key)}:{now_ms}", "integration_id": health_id(h.key),
        "destination": "calendar", "window_start_ms": h.since_ms, "window_end_ms": now_ms,
        "requests": 0, "errors": 0, "error_rate": 0.0, "latency_p50_ms": 0.0,
        "latency_p95_ms": 0.0, "latency_p99_ms": 0.0,
        "availability": 0.0 if state == "failing" else 1.0, "reliability_score": SCORE[state],
        "status": state, "breaches": [] if state == "healthy" else [f"calendar_{h.status}"],
        "source_ts_ms": now_ms, "computed_at_ms": now_ms,
        "calendar": {
            "calendar_key": h.key, "provider": h.provider, "status": h.status,
            "since_ms": h.since_ms, "last_success_ms": h.last_success_ms,
            "interval_ms": h.interval_ms, "push_live": h.push_live,
        },
    }  # fmt: skip


def event_record(c: StatusChange, now_ms: int) -> dict[str, Any]:
    """The integrations' `state_changed` event, its name and previous a calendar status."""
    return {
        "event_id": f"{health_id(c.key)}:state_changed:{c.status}:{now_ms}",
        "integration_id": health_id(c.key), "destination": "calendar", "kind": "state_changed",
        "name": c.status, "previous": c.previous, "detail": c.detail,
        "source_ts_ms": now_ms, "computed_at_ms": now_ms,
    }  # fmt: skip


def set_gauges(book: HealthBook) -> None:
    counts = book.counts()
    for provider in PROVIDERS:
        for status in health.STATUSES:
            metrics.SLA_CALENDARS.labels(provider, status).set(counts[(provider, status)])
