"""Positions, resume and read state: what a reconnecting client is sent."""

from __future__ import annotations

from typing import Any

from connectors.sinks.inapp.history import Entry, History

T0 = 1_000_000.0


def history(**kw: Any) -> History:
    args = {"per_partition": 100, "per_user": 10, "max_age_s": 3600.0, **kw}
    h = History("topic-A", **args)
    h.start(0, 0, 0)
    h.start(1, 0, 0)
    return h


def add(h: History, user: str, offset: int, partition: int = 0, at: float = T0) -> Entry:
    e = Entry(partition, offset, user, {"delivery_id": f"d-{partition}-{offset}"}, at)
    h.add(e, at)
    return e


def offsets(entries: list[Entry]) -> list[int]:
    return [e.offset for e in entries]


def test_resume_returns_what_came_after_the_position_in_order() -> None:
    h = history()
    for o in range(5):
        add(h, "u", o)
    r = h.resume("u", ("topic-A:0", 2))
    assert (r.recovered, offsets(r.entries), r.after) == (True, [3, 4], {0: 2})


def test_resume_at_the_head_recovers_with_nothing_missed() -> None:
    h = history()
    add(h, "u", 0)
    r = h.resume("u", ("topic-A:0", 0))
    assert (r.recovered, r.entries) == (True, [])


def test_other_users_notifications_are_never_replayed() -> None:
    h = history()
    add(h, "u", 0)
    add(h, "v", 1)
    add(h, "u", 2)
    assert offsets(h.resume("u", ("topic-A:0", -1)).entries) == [0, 2]


def test_fresh_connect_gets_the_retained_history_unflagged() -> None:
    h = history()
    add(h, "u", 0)
    r = h.resume("u", None)
    assert (r.recovered, offsets(r.entries)) == (None, [0])


def test_another_epoch_is_not_recovered() -> None:
    h = history()
    add(h, "u", 0)
    assert h.resume("u", ("topic-B:0", 0)).recovered is False


def test_a_position_on_another_partition_is_not_recovered() -> None:
    h = history()
    add(h, "u", 5, partition=1)
    r = h.resume("u", ("topic-A:7", 0))
    assert (r.recovered, offsets(r.entries)) == (False, [5])


def test_position_before_the_window_is_not_recovered() -> None:
    h = history(per_partition=3)
    for o in range(6):
        add(h, "u", o)
    assert h.resume("u", ("topic-A:0", 1)).recovered is False
    assert h.resume("u", ("topic-A:0", 2)).recovered is True


def test_position_past_the_log_end_is_not_recovered() -> None:
    """A log that was reset reuses offsets: a position beyond its end is from before."""
    h = history()
    add(h, "u", 3)
    assert h.resume("u", ("topic-A:0", 9)).recovered is False


def test_user_cap_dropping_a_missed_notification_is_not_recovered() -> None:
    h = history(per_user=2)
    for o in range(4):
        add(h, "u", o)
    assert h.resume("u", ("topic-A:0", 0)).recovered is False
    assert offsets(h.resume("u", ("topic-A:0", 1)).entries) == [2, 3]


def test_age_bound_moves_the_window() -> None:
    h = history(max_age_s=60)
    add(h, "u", 0, at=T0)
    add(h, "u", 1, at=T0 + 120)
    r = h.resume("u", ("topic-A:0", -1))
    assert (r.recovered, offsets(r.entries)) == (False, [1])


def test_window_start_given_at_start_bounds_resume() -> None:
    h = History("topic-A", per_partition=100, per_user=10, max_age_s=3600)
    h.start(0, window_start=50, log_end=60)
    assert h.resume("u", ("topic-A:0", 48)).recovered is False
    assert h.resume("u", ("topic-A:0", 49)).recovered is True


def test_read_marks_only_the_users_own_notification() -> None:
    h = history()
    e = add(h, "u", 0)
    assert h.mark("v", e.id, "read") is None
    assert h.mark("u", e.id, "read") is e and (e.seen, e.read) == (True, True)


def test_a_second_identical_mark_changes_nothing() -> None:
    h = history()
    e = add(h, "u", 0)
    h.mark("u", e.id, "seen")
    assert h.mark("u", e.id, "seen") is None


def test_find_ignores_ids_of_other_users() -> None:
    h = history()
    mine, theirs = add(h, "u", 0), add(h, "v", 1)
    assert h.find("u", (mine.id, theirs.id, "nope")) == [mine]


def test_a_receipt_read_before_its_notification_applies_when_it_arrives() -> None:
    h = history()
    assert h.mark("u", "d-0-0", "read") is None
    e = add(h, "u", 0)
    assert (e.seen, e.read) == (True, True)


def test_an_early_seen_does_not_undo_an_early_read() -> None:
    h = history()
    h.mark("u", "d-0-0", "read")
    h.mark("u", "d-0-0", "seen")
    assert add(h, "u", 0).read is True


def test_an_early_receipt_of_another_user_does_not_apply() -> None:
    h = history()
    h.mark("v", "d-0-0", "read")
    assert add(h, "u", 0).read is False
