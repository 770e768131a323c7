"""The wedding the calendar sinks' tests deliver: an upsert of a one-hour event in London on
the primary calendar; each test module adds its provider's fields (ids, version, texts)."""

from __future__ import annotations

from typing import Any

ONE_HOUR_IN_LONDON: dict[str, Any] = {
    "calendar_id": "primary",
    "operation": "upsert",
    "starts_at_ms": 1_780_000_000_000,  # 2026-05-28T20:26:40Z
    "ends_at_ms": 1_780_003_600_000,
    "time_zone": "Europe/London",
    "all_day": False,
}
