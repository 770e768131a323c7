"""A connected calendar's sync health, from its last answers (CALENDAR_SYNC.md §5.8).

    healthy          push channel live and a recent successful fetch
    polling_only     no push (CalDAV, or no live channel) but recent successful fetches
    stale            no successful fetch within twice its interval
    reauth_required  the provider refuses the credential: the vendor must reconnect
    disabled         the calendar is gone or no longer shared

A vendor with a wedding in the next `SOON_MS` whose calendar is stale, needs re-auth or is
disabled gets one `calendar.protection_degraded` notice per episode (its id names the
calendar, the status and when the episode began, so a repeat is dropped downstream).
"""

from __future__ import annotations

import hashlib
from typing import Literal

Status = Literal["healthy", "polling_only", "stale", "reauth_required", "disabled"]
STATUSES: tuple[Status, ...] = ("healthy", "polling_only", "stale", "reauth_required", "disabled")
DEGRADED = frozenset({"stale", "reauth_required", "disabled"})
SOON_MS = 14 * 24 * 3600 * 1000


def status(
    *,
    now_ms: int,
    interval_ms: int,
    last_success_ms: int | None,
    push_live: bool,
    reauth: bool = False,
    gone: bool = False,
    added_ms: int = 0,
) -> Status:
    if gone:
        return "disabled"
    if reauth:
        return "reauth_required"
    since = last_success_ms if last_success_ms is not None else added_ms
    if now_ms - since > 2 * interval_ms:
        return "stale"
    return "healthy" if push_live else "polling_only"


def degraded_notice_id(calendar_key: str, status: Status, since_ms: int) -> str:
    return hashlib.blake2b(
        f"{calendar_key}|{status}|{since_ms}".encode(), digest_size=16
    ).hexdigest()
