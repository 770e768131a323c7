"""SLA windows on known inputs: percentiles, error rate, availability at window edges,
alerts, health states, silence."""

from __future__ import annotations

from typing import Any

import pytest
from streams.logic.sla import (
    DEGRADED,
    FAILING,
    HEALTHY,
    SlaWindows,
    Thresholds,
    quantile,
)

T0 = 1_800_000_000.0  # a multiple of 10 s: slot edges fall on round numbers


def result(
    at_s: float,
    outcome: str = "delivered",
    latency_ms: float = 100.0,
    integration: str | None = "crm-1",
    destination: str = "crm",
) -> dict[str, Any]:
    done = int(at_s * 1000)
    return {"outcome": outcome, "destination": destination, "integration_id": integration,
            "completed_at_ms": done, "source_ts_ms": done - int(latency_ms)}  # fmt: skip


def windows(**kw: Any) -> SlaWindows:
    return SlaWindows(**kw)


# ---- percentiles -------------------------------------------------------------------------
def test_quantile_interpolates_inside_the_bucket() -> None:
    # 10 values in the (50, 75] bucket (index 4): the median sits halfway through it
    buckets = [0] * 23
    buckets[4] = 10
    assert quantile(0.5, buckets) == pytest.approx(62.5)


def test_quantile_of_an_empty_histogram_is_none() -> None:
    assert quantile(0.99, [0] * 23) is None


def test_p99_sees_the_one_slow_call_in_a_hundred() -> None:
    w = windows()
    for i in range(99):
        w.add(result(T0 + 1 + i * 0.1, latency_ms=20))  # bucket (10, 25]
    w.add(result(T0 + 15, latency_ms=2_500))  # bucket (2000, 3000]
    s = w.stats("crm-1", "1m", T0 + 20)
    assert s.p50_ms == pytest.approx(10 + 15 * 50 / 99)  # rank 50 of 99 in (10, 25]
    assert s.p99_ms == pytest.approx(10 + 15 * 99 / 99)  # rank 99: the top of (10, 25]
    assert s.requests == 100
    w.add(result(T0 + 16, latency_ms=2_500))
    assert w.stats("crm-1", "1m", T0 + 20).p99_ms == pytest.approx(2_000 + 1000 * 0.99 / 2)


# ---- error rate and what counts ------------------------------------------------------------
def test_error_rate_counts_failed_attempts_over_all_attempts() -> None:
    w = windows()
    for i in range(8):
        w.add(result(T0 + i))
    w.add(result(T0 + 8, "retry_scheduled"))
    w.add(result(T0 + 9, "dead_lettered"))
    assert w.stats("crm-1", "1m", T0 + 9).error_rate == pytest.approx(0.2)


def test_skips_and_reads_are_not_attempts() -> None:
    w = windows()
    w.add(result(T0, "delivered"))
    for outcome in ("skipped_duplicate", "skipped_stale", "read"):
        w.add(result(T0 + 1, outcome))
    assert w.stats("crm-1", "1m", T0 + 2).requests == 1


def test_seen_counts_as_success_only_for_inapp() -> None:
    w = windows()
    w.add(result(T0, "seen", integration=None, destination="inapp"))
    w.add(result(T0, "seen", integration="crm-1", destination="crm"))
    assert w.stats("inapp", "1m", T0).successes == 1
    assert "crm-1" not in w.integrations


# ---- availability and window edges ---------------------------------------------------------
def test_a_slot_where_every_attempt_failed_is_down_time() -> None:
    w = windows()  # 10 s slots: the 1m window is 6 slots
    w.add(result(T0 + 1))
    w.add(result(T0 + 11, "retry_scheduled"))  # slot 2: down
    w.add(result(T0 + 21, "retry_scheduled"))
    w.add(result(T0 + 22))  # slot 3: one success, up
    assert w.stats("crm-1", "1m", T0 + 59).availability == pytest.approx(5 / 6)


def test_a_result_at_the_first_instant_of_the_window_is_inside() -> None:
    w = windows()
    w.add(result(T0, "dead_lettered"))
    s = w.stats("crm-1", "1m", T0 + 59.999)  # window = slots [T0, T0 + 60)
    assert (s.errors, s.availability) == (1, pytest.approx(5 / 6))


def test_a_result_just_before_the_window_is_outside() -> None:
    w = windows()
    w.add(result(T0 - 0.001, "dead_lettered"))
    s = w.stats("crm-1", "1m", T0 + 59.999)
    assert (s.errors, s.availability) == (0, 1.0)


def test_the_window_moves_a_whole_slot_at_a_time() -> None:
    w = windows()
    w.add(result(T0 + 5, "dead_lettered"))
    assert w.stats("crm-1", "1m", T0 + 59.9).errors == 1
    assert w.stats("crm-1", "1m", T0 + 60.0).errors == 0


def test_longer_windows_remember_longer() -> None:
    w = windows()
    w.add(result(T0, "dead_lettered"))
    later = T0 + 120
    assert [w.stats("crm-1", win, later).errors for win in ("1m", "5m", "1h")] == [0, 1, 1]


# ---- alerts, score and states --------------------------------------------------------------
def test_error_rate_alert_needs_enough_attempts() -> None:
    w = windows()
    w.add(result(T0, "retry_scheduled"))
    s = w.stats("crm-1", "1m", T0)
    assert "error_rate" not in s.alerts(Thresholds()) and s.error_rate == 1.0
    assert "error_rate" in s.alerts(Thresholds(min_requests=1))


def test_latency_alert_fires_over_the_threshold_per_integration() -> None:
    w = windows(overrides={"slow-crm": Thresholds(latency_p99_ms=5_000, min_requests=1)})
    for key in ("crm-1", "slow-crm"):
        for i in range(10):
            w.add(result(T0 + i, latency_ms=1_200, integration=key))
    assert "latency" in w.stats("crm-1", "1m", T0 + 10).alerts(w.thresholds("crm-1"))
    assert "latency" not in w.stats("slow-crm", "1m", T0 + 10).alerts(w.thresholds("slow-crm"))


def test_reliability_score_combines_the_three() -> None:
    w = windows()
    for i in range(9):
        w.add(result(T0 + i, latency_ms=40))
    w.add(result(T0 + 9, "retry_scheduled"))
    s = w.stats("crm-1", "1m", T0 + 9)  # one slot, 9 of 10 fine: up, error rate 0.1
    assert s.score(Thresholds()) == pytest.approx(100 * 1.0 * 0.9 * 1.0)


def test_state_goes_failing_then_healthy_after_recovery() -> None:
    w = windows()
    for i in range(20):
        w.add(result(T0 + i))
    assert w.evaluate(T0 + 20)[0][0].state == HEALTHY
    for i in range(20):
        w.add(result(T0 + 30 + i, "retry_scheduled"))
    healths, events = w.evaluate(T0 + 50)
    assert healths[0].state == FAILING
    assert ("state_changed", FAILING, HEALTHY) in {(e.kind, e.name, e.previous) for e in events}
    assert "1m:error_rate" in {e.name for e in events if e.kind == "alert_firing"}
    for i in range(30):
        w.add(result(T0 + 120 + i))
    healths, events = w.evaluate(T0 + 175)  # the failures are out of the 1m window
    assert healths[0].state == HEALTHY
    assert "1m:error_rate" in {e.name for e in events if e.kind == "alert_resolved"}
    assert "1h:error_rate" in healths[0].firing  # the hour still remembers


def test_a_firing_alert_is_reported_once() -> None:
    w = windows()
    for i in range(12):
        w.add(result(T0 + i, "retry_scheduled"))
    first = [e for e in w.evaluate(T0 + 12)[1] if e.kind == "alert_firing"]
    again = [e for e in w.evaluate(T0 + 13)[1] if e.kind == "alert_firing"]
    assert first and again == []


# ---- silence -------------------------------------------------------------------------------
def test_silence_from_a_busy_integration_degrades_it() -> None:
    w = windows()
    for i in range(600):  # 10 a minute for an hour
        w.add(result(T0 + i * 6))
    quiet_since = T0 + 3600
    assert w.evaluate(quiet_since)[0][0].state == HEALTHY
    healths, events = w.evaluate(quiet_since + 305)
    assert healths[0].state == DEGRADED and "5m:silence" in healths[0].firing
    assert ("alert_firing", "5m:silence") in {(e.kind, e.name) for e in events}


def test_inapp_going_quiet_is_users_logging_off_not_silence() -> None:
    w = windows()
    for i in range(600):
        w.add(result(T0 + i * 6, "seen", integration=None, destination="inapp"))
    assert w.evaluate(T0 + 3600 + 305)[0][0].state == HEALTHY


def test_silence_from_a_quiet_integration_is_normal() -> None:
    w = windows()
    for i in range(10):  # 10 in an hour: under 2 a minute
        w.add(result(T0 + i * 360))
    assert w.evaluate(T0 + 3600 + 305)[0][0].state == HEALTHY


def test_evaluation_without_new_results_still_moves_the_windows() -> None:
    w = windows()
    for i in range(12):
        w.add(result(T0 + i, "dead_lettered"))
    assert w.evaluate(T0 + 12)[0][0].state == FAILING
    assert w.evaluate(T0 + 100)[0][0].state == HEALTHY  # no result arrived in between


def test_old_slots_are_forgotten() -> None:
    w = windows()
    w.add(result(T0))
    w.evaluate(T0 + 2 * 3600)
    assert "crm-1" not in w.integrations


def test_merged_sums_several_integrations_inside_the_window_only() -> None:
    w = windows()
    w.add(result(T0 + 1, integration="a"))
    w.add(result(T0 + 2, "retry_scheduled", integration="b"))
    w.add(result(T0 - 100, integration="b"))  # before the 1m window
    merged = w.merged(["a", "b", "gone"], "1m", T0 + 59)
    assert (merged.successes, merged.errors) == (1, 1)
