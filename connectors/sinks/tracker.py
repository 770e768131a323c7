"""Moved: the offset tracker is `connectors.sinks.runtime.offsets` (kept importable here)."""

from __future__ import annotations

from connectors.sinks.runtime.offsets import TP, OffsetTracker, behind

__all__ = ["TP", "OffsetTracker", "behind"]
