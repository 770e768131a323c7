"""The feed's scheduler: single flight, debounced pushes, dirty re-runs, backoff."""

from __future__ import annotations

from streams.logic.calendar.schedule import MINUTE, SECOND, Scheduler

K = "google:int-1:primary"


def started(now: int = 0) -> Scheduler:
    s = Scheduler()
    s.add(K, now, 60 * MINUTE)
    assert s.due(now, 10) == [K]  # the catch-up round after a start
    s.done(K, now, "ok")
    return s


def test_a_new_calendar_is_fetched_at_once() -> None:
    s = Scheduler()
    s.add(K, 5, 60 * MINUTE)
    assert s.due(5, 10) == [K]


def test_after_a_success_the_next_fetch_is_the_reconcile() -> None:
    s = started()
    assert s.due(60 * MINUTE - 1, 10) == [] and s.due(60 * MINUTE, 10) == [K]


def test_a_push_is_fetched_after_the_debounce() -> None:
    s = started()
    s.push(K, 1000)
    assert s.due(2999, 10) == [] and s.due(3000, 10) == [K]


def test_a_burst_of_pushes_is_one_fetch_within_the_max_debounce() -> None:
    s = started()
    for t in range(1000, 20_000, 500):
        s.push(K, t)
        if s.due(t, 10):
            s.done(K, t, "ok")
            break
    else:
        raise AssertionError("never fetched during the burst")
    assert t <= 1000 + 10 * SECOND


def test_a_running_calendar_is_never_handed_out_twice() -> None:
    s = started()
    s.push(K, 0)
    assert s.due(5000, 10) == [K]
    s.push(K, 5000)
    assert s.due(10_000, 10) == []


def test_a_push_during_a_fetch_fetches_again_when_it_ends() -> None:
    s = started()
    s.push(K, 0)
    s.due(5000, 10)
    s.push(K, 5100)  # mid-fetch
    s.done(K, 5200, "ok")
    assert s.due(5200, 10) == [K]


def test_dirty_re_runs_stop_after_three_passes() -> None:
    s = started()
    s.push(K, 0)
    now = 5000
    runs = 0
    while s.due(now, 10):
        runs += 1
        s.push(K, now)
        s.done(K, now, "ok")
    assert runs == 4  # the first fetch and three more passes; the next waits the debounce
    assert s.due(now + 2 * SECOND, 10) == [K]


def test_failures_back_off_and_a_push_does_not_hurry_them() -> None:
    s = started()
    s.push(K, 0)
    s.due(3000, 10)
    s.done(K, 3000, "failed")
    s.push(K, 3100)
    assert s.due(3999, 10) == [] and s.due(4000, 10) == [K]
    s.done(K, 4000, "failed")
    assert s.due(5999, 10) == [] and s.due(6000, 10) == [K]


def test_a_throttle_waits_its_retry_after() -> None:
    s = started()
    s.push(K, 0)
    s.due(3000, 10)
    s.done(K, 3000, "throttled", retry_after_ms=30_000)
    s.push(K, 4000)
    assert s.due(32_999, 10) == [] and s.due(33_000, 10) == [K]


def test_a_calendar_needing_reauth_is_not_fetched_even_on_a_push() -> None:
    s = started()
    s.push(K, 0)
    s.due(3000, 10)
    s.done(K, 3000, "reauth")
    s.push(K, 4000)
    assert s.next_due_ms() is None


def test_the_limit_bounds_concurrent_fetches_longest_waiting_first() -> None:
    s = Scheduler()
    for n in range(5):
        s.add(f"c{n}", 0, MINUTE, first_due_ms=10 - n)
    assert s.due(100, 2) == ["c4", "c3"]


def test_a_refused_calendar_stays_due_for_the_next_tick() -> None:
    s = Scheduler()
    for name in ("a", "b"):
        s.add(name, 0, MINUTE)
    assert s.due(0, 10, allow=lambda key: key == "b") == ["b"]
    assert s.due(0, 10) == ["a"]


def test_a_shorter_interval_brings_the_next_fetch_forward() -> None:
    s = Scheduler()
    s.add(K, 0, 15 * MINUTE)  # polled: no push channel yet
    s.due(0, 10)
    s.done(K, 0, "ok")
    s.set_interval(K, MINUTE)  # e.g. a wedding came close
    assert s.due(MINUTE, 10) == [K]


def test_due_hands_out_exactly_the_calendars_whose_time_has_come() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    keys = st.sampled_from([f"c{n}" for n in range(6)])
    step = st.one_of(
        st.tuples(st.just("push"), keys),
        st.tuples(st.just("done"), keys),
        st.tuples(st.just("fail"), keys),
        st.tuples(st.just("tick"), st.just("")),
    )

    @settings(max_examples=200, deadline=None)
    @given(st.lists(step, max_size=40))
    def check(steps: list[tuple[str, str]]) -> None:
        s = Scheduler()
        for n in range(6):
            s.add(f"c{n}", 0, 10 * SECOND)
        now = 0
        for kind, key in steps:
            now += 700
            if kind == "push":
                s.push(key, now)
            elif kind in ("done", "fail") and s.slots[key].running:
                s.done(key, now, "ok" if kind == "done" else "failed")
            elif kind == "tick":
                want = {
                    k for k, slot in s.slots.items()
                    if not slot.running and slot.due_ms is not None and slot.due_ms <= now
                }  # fmt: skip
                assert set(s.due(now, 100)) == want
            times = [x.due_ms for x in s.slots.values() if not x.running and x.due_ms is not None]
            assert s.next_due_ms() == (min(times) if times else None)

    check()
