"""The staleness table the Google and Graph wire tests share: the version the provider holds
(None: none; not a number: unreadable), the operation of a record of version 3, and whether
that record is stale there (an upsert is stale at an equal or newer version; a delete only at a
newer one; an unreadable version never makes a record stale)."""

from __future__ import annotations

STALE_CASES: list[tuple[str | None, str, bool]] = [
    ("2", "upsert", False),
    ("3", "upsert", True),
    ("4", "upsert", True),
    ("3", "delete", False),
    ("4", "delete", True),
    (None, "upsert", False),
    ("garbage", "upsert", False),
]
