"""The differ: a round against what was known yields upserts and tombstones only."""

from __future__ import annotations

from streams.logic.calendar.differ import Known, diff
from streams.logic.calendar.echo import OwnedEvent, OwnedIndex
from streams.logic.calendar.rounds import Observed

from tests.unit.calendar.feed.helpers import CAL, HORIZON, T0, H, busy, round_of


def run(known: Known, *changes, full: bool = False, owned: OwnedIndex | None = None):  # type: ignore[no-untyped-def]
    return diff(
        known,
        round_of(*changes, full=full),
        owned or OwnedIndex(),
        version=1,
        now_ms=T0,
        horizon=HORIZON,
    )


def test_a_new_busy_event_is_one_upsert() -> None:
    out = run(Known(), ("e1", (busy(10, 12),)))
    assert [(r["state"], r["start_ms"]) for r in out.records] == [("active", T0 + 10 * H)]


def test_the_same_event_again_emits_nothing() -> None:
    first = run(Known(), ("e1", (busy(10, 12),)))
    again = run(first.known, ("e1", (busy(10, 12),)))
    assert again.records == []


def test_a_full_resync_of_an_unchanged_calendar_emits_nothing() -> None:
    first = run(Known(), ("e1", (busy(10, 12),)), ("e2", (busy(20, 21),)))
    resync = run(first.known, ("e2", (busy(20, 21),)), ("e1", (busy(10, 12),)), full=True)
    assert resync.records == []


def test_a_full_resync_tombstones_what_it_no_longer_lists() -> None:
    first = run(Known(), ("e1", (busy(10, 12),)), ("e2", (busy(20, 21),)))
    resync = run(first.known, ("e1", (busy(10, 12),)), full=True)
    assert [(r["resource_id"], r["state"]) for r in resync.records] == [("e2", "deleted")]
    assert "e2" not in resync.known.intervals


def test_a_moved_event_is_an_upsert_with_the_new_times() -> None:
    first = run(Known(), ("e1", (busy(10, 12),)))
    moved = run(first.known, ("e1", (busy(14, 15),)))
    assert [(r["state"], r["start_ms"]) for r in moved.records] == [("active", T0 + 14 * H)]


def test_a_deleted_resource_tombstones_every_occurrence() -> None:
    series = tuple(busy(24 * d + 9, 24 * d + 10, instance=str(d)) for d in range(3))
    first = run(Known(), ("s1", series))
    gone = run(first.known, ("s1", None))
    assert sorted(r["state"] for r in gone.records) == ["deleted"] * 3


def test_an_exdate_tombstones_only_that_occurrence() -> None:
    series = tuple(busy(24 * d + 9, 24 * d + 10, instance=str(d)) for d in range(3))
    first = run(Known(), ("s1", series))
    edited = run(first.known, ("s1", (series[0], series[2])))
    assert [r["state"] for r in edited.records] == ["deleted"]
    assert edited.records[0]["interval_id"] in first.known.intervals["s1"]


def test_a_busy_event_turned_free_is_a_tombstone() -> None:
    first = run(Known(), ("e1", (busy(10, 12),)))
    free = run(first.known, ("e1", (busy(10, 12, cls="free"),)))
    assert [r["state"] for r in free.records] == ["deleted"]


def test_an_all_day_free_event_is_kept_for_the_soft_notice() -> None:
    out = run(Known(), ("e1", (busy(0, 24, cls="free", all_day=True),)))
    assert [(r["busy"], r["all_day"]) for r in out.records] == [("free", True)]


def test_a_timed_free_event_is_no_interval() -> None:
    assert run(Known(), ("e1", (busy(10, 12, cls="free"),))).records == []


def test_an_event_beyond_the_horizon_is_no_interval() -> None:
    assert run(Known(), ("e1", (busy(600 * 24, 600 * 24 + 1),))).records == []


def test_our_own_event_is_an_echo_not_busy_time() -> None:
    owned = OwnedIndex()
    owned.wrote(CAL.integration_id, OwnedEvent("ext-1", T0 + 10 * H, T0 + 12 * H))
    out = run(Known(), ("ours", (busy(10, 12, ours="ext-1"),)), owned=owned)
    assert (out.records, out.drift, out.echoes) == ([], [], 1)


def test_our_event_moved_by_the_vendor_is_drift() -> None:
    owned = OwnedIndex()
    owned.wrote(CAL.integration_id, OwnedEvent("ext-1", T0 + 10 * H, T0 + 12 * H))
    out = run(Known(), ("ours", (busy(11, 13, ours="ext-1"),)), owned=owned)
    assert out.records == []
    assert [(d.external_event_id, d.deleted, d.calendar_start_ms) for d in out.drift] == [
        ("ext-1", False, T0 + 11 * H)
    ]


def test_our_event_deleted_by_the_vendor_is_drift() -> None:
    owned = OwnedIndex()
    owned.wrote(CAL.integration_id, OwnedEvent("ext-1", T0 + 10 * H, T0 + 12 * H))
    first = run(Known(), ("ours", (busy(10, 12, ours="ext-1"),)), owned=owned)
    gone = run(first.known, ("ours", None), owned=owned)
    assert [d.deleted for d in gone.drift] == [True]


def test_our_event_we_deleted_ourselves_is_an_echo() -> None:
    owned = OwnedIndex()
    owned.wrote(CAL.integration_id, OwnedEvent("ext-1", T0 + 10 * H, T0 + 12 * H))
    first = run(Known(), ("ours", (busy(10, 12, ours="ext-1"),)), owned=owned)
    owned.wrote(CAL.integration_id, OwnedEvent("ext-1", None, None, deleted=True))
    gone = run(first.known, ("ours", None), owned=owned)
    assert (gone.drift, gone.echoes) == ([], 1)


def test_a_graph_event_is_ours_by_the_provider_id_our_write_got() -> None:
    owned = OwnedIndex()
    owned.wrote(CAL.integration_id, OwnedEvent("ext-1", T0 + 10 * H, T0 + 12 * H))
    owned.got_id(CAL.integration_id, "AAMk-1", "ext-1")
    out = run(Known(), ("AAMk-1", (busy(10, 12),)), owned=owned)
    assert (out.records, out.echoes) == ([], 1)


def test_known_state_survives_its_json_form() -> None:
    first = run(Known(), ("e1", (busy(10, 12),)), ("ours", (busy(1, 2, ours="x"),)))
    assert Known.from_json(first.known.to_json()) == first.known


def test_our_event_written_as_wall_clock_is_compared_in_the_calendars_zone() -> None:
    owned = OwnedIndex()  # the platform knew no zone: the sink placed 11:00 in London (BST)
    owned.wrote(
        CAL.integration_id,
        OwnedEvent(
            "ext-1", None, None, local_start="2027-06-03T11:00", local_end="2027-06-03T13:00"
        ),
    )
    at = T0 - T0 % (24 * H) + 10 * H  # 2027-06-03T10:00Z = 11:00 in London
    echo = Observed(start_ms=at, end_ms=at + 2 * H, busy="busy", ours="ext-1")
    moved = Observed(start_ms=at + H, end_ms=at + 3 * H, busy="busy", ours="ext-1")
    assert run(Known(), ("ours", (echo,)), owned=owned).echoes == 1
    assert len(run(Known(), ("ours", (moved,)), owned=owned).drift) == 1


def test_our_event_still_at_its_previous_times_is_an_echo_while_the_sink_catches_up() -> None:
    owned = OwnedIndex()
    owned.wrote(CAL.integration_id, OwnedEvent("ext-1", T0 + 10 * H, T0 + 12 * H))
    owned.wrote(CAL.integration_id, OwnedEvent("ext-1", T0 + 30 * H, T0 + 32 * H))  # moved
    out = run(Known(), ("ours", (busy(10, 12, ours="ext-1"),)), owned=owned)
    assert (out.drift, out.echoes) == ([], 1)


def _echoed_then_forgotten() -> Known:
    """A known calendar whose echo of our event was seen while its delivery was kept; the
    index of a later start (the delivery no longer kept) is empty."""
    owned = OwnedIndex()
    owned.wrote(
        CAL.integration_id, OwnedEvent("ext-1", T0 + 10 * H, T0 + 12 * H, aggregate_id="w-1")
    )
    return run(Known(), ("ours", (busy(10, 12, ours="ext-1"),)), owned=owned).known


def test_our_event_moved_after_its_delivery_expired_is_still_drift() -> None:
    known = Known.from_json(_echoed_then_forgotten().to_json())  # the sync state, read back
    moved = run(known, ("ours", (busy(11, 13, ours="ext-1"),)))
    assert [(d.aggregate_id, d.calendar_start_ms, d.platform_start_ms) for d in moved.drift] == [
        ("w-1", T0 + 11 * H, T0 + 10 * H)
    ]
    assert moved.records == []


def test_our_event_unchanged_after_its_delivery_expired_is_an_echo() -> None:
    again = run(_echoed_then_forgotten(), ("ours", (busy(10, 12, ours="ext-1"),)), full=True)
    assert (again.records, again.drift, again.echoes) == ([], [], 1)


def test_our_event_deleted_by_the_vendor_after_its_delivery_expired_is_drift() -> None:
    gone = run(_echoed_then_forgotten(), ("ours", None))
    assert [(d.deleted, d.platform_start_ms) for d in gone.drift] == [(True, T0 + 10 * H)]
    assert "ours" not in gone.known.shown
