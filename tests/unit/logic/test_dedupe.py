"""The time-windowed seen-set."""

from __future__ import annotations

import pytest
from streams.logic.dedupe import SeenWindow


def test_first_sighting_is_not_seen() -> None:
    assert SeenWindow(1000).seen("a", 0) is False


def test_repeat_inside_the_window_is_seen() -> None:
    window = SeenWindow(1000)
    window.seen("a", 0)
    assert window.seen("a", 999) is True


def test_repeat_after_the_window_is_not_seen() -> None:
    window = SeenWindow(1000)
    window.seen("a", 0)
    assert window.seen("a", 1000) is False


def test_repeat_does_not_extend_the_window() -> None:
    window = SeenWindow(1000)
    window.seen("a", 0)
    window.seen("a", 900)
    assert window.seen("a", 1000) is False


def test_expired_ids_are_dropped() -> None:
    window = SeenWindow(1000)
    for i in range(5):
        window.seen(str(i), i)
    window.seen("late", 2000)
    assert len(window) == 1


def test_max_entries_evicts_the_oldest() -> None:
    window = SeenWindow(10_000, max_entries=2)
    for name in ("a", "b", "c"):
        window.seen(name, 0)
    assert "a" not in window and "c" in window


def test_snapshot_round_trip_remembers_ids() -> None:
    window = SeenWindow(1000)
    window.seen("a", 10)
    restored = SeenWindow.from_snapshot(window.snapshot(), 1000)
    assert restored.seen("a", 500) is True


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window_ms"):
        SeenWindow(0)
