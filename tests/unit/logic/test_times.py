"""Reading a wedding's times: zones, wall clocks, offsets, PostgreSQL text, DST edges.

Tests that could be fooled by the host's zone run with the host set to Pacific/Kiritimati
(UTC+14), far from every zone used here."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest
from streams.errors import PoisonMessage
from streams.logic.times import TimeRefused, WeddingClock

LONDON = WeddingClock("ev-1", "Europe/London")
NO_ZONE = WeddingClock("ev-1", None)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_refusal_is_a_poison_message() -> None:
    assert issubclass(TimeRefused, PoisonMessage)


def test_unknown_zone_names_the_event_field_and_value() -> None:
    with pytest.raises(TimeRefused, match=r"ev-1.*time_zone.*Mars/Olympus"):
        WeddingClock("ev-1", "Mars/Olympus").zone("ceremony_time")


def test_malformed_zone_name_is_refused_not_crashed() -> None:
    with pytest.raises(TimeRefused, match="time_zone"):
        WeddingClock("ev-1", "../../etc/passwd").zone("ceremony_time")


def test_zone_directory_name_is_refused() -> None:
    with pytest.raises(TimeRefused, match="Europe"):
        WeddingClock("ev-1", "Europe").zone("ceremony_time")


def test_localtime_is_refused_because_it_is_the_host_zone() -> None:
    with pytest.raises(TimeRefused, match="localtime"):
        WeddingClock("ev-1", "localtime").zone("ceremony_time")


def test_integration_zone_errors_name_the_integration_setting() -> None:
    clock = WeddingClock("ev-1", "Nowhere/Town", zone_field="integration time_zone")
    with pytest.raises(TimeRefused, match="integration time_zone"):
        clock.zone("ceremony_time")


def test_no_zone_at_all_is_refused_naming_event_and_field() -> None:
    with pytest.raises(TimeRefused, match=r"ev-1.*ceremony_time"):
        NO_ZONE.on_day(date(2027, 6, 19), "ceremony_time", "14:00")


def test_naive_wall_clock_is_read_in_the_wedding_zone(host_far_east: None) -> None:
    assert LONDON.on_day(date(2027, 6, 19), "ceremony_time", "14:00") == utc(2027, 6, 19, 13)


def test_timetz_whole_hour_offset_is_kept() -> None:
    placed = LONDON.on_day(date(2027, 6, 19), "ceremony_time", "14:30:00+02")
    assert placed == utc(2027, 6, 19, 12, 30)
    assert placed.utcoffset() == timedelta(hours=2)


def test_timetz_fraction_and_negative_half_hour_offset_is_kept() -> None:
    placed = LONDON.on_day(date(2027, 6, 19), "ceremony_time", "14:30:00.5-05:30")
    assert placed == datetime(2027, 6, 19, 20, 0, 0, 500000, tzinfo=UTC)


def test_timetz_needs_no_zone() -> None:
    placed = NO_ZONE.on_day(date(2027, 6, 19), "ceremony_time", "14:30:00+02")
    assert placed == utc(2027, 6, 19, 12, 30)


def test_unreadable_time_is_refused_naming_field_and_value() -> None:
    with pytest.raises(TimeRefused, match=r"ev-1.*ceremony_time.*half past two"):
        LONDON.on_day(date(2027, 6, 19), "ceremony_time", "half past two")


def test_time_that_is_not_text_is_refused() -> None:
    with pytest.raises(TimeRefused, match="setup_time"):
        LONDON.on_day(date(2027, 6, 19), "setup_time", 50_400_000_000)


def test_spring_forward_gap_time_uses_the_offset_before_the_change() -> None:
    # 28 March 2027, London: 01:00 GMT jumps to 02:00 BST; 01:30 never happens on the wall.
    # fold=0 reads it with the earlier offset (GMT): 01:30 UTC, which the wall shows as 02:30.
    placed = LONDON.on_day(date(2027, 3, 28), "ceremony_time", "01:30")
    assert placed.astimezone(UTC) == utc(2027, 3, 28, 1, 30)


def test_spring_forward_gap_time_comes_back_as_the_wall_clock_shows_it() -> None:
    placed = LONDON.on_day(date(2027, 3, 28), "ceremony_time", "01:30")
    assert placed.isoformat() == "2027-03-28T02:30:00+01:00"


def test_fall_back_ambiguous_time_is_the_first_occurrence() -> None:
    # 31 October 2027, London: 01:30 happens twice, first in BST then in GMT; fold=0 = BST.
    placed = LONDON.on_day(date(2027, 10, 31), "ceremony_time", "01:30")
    assert placed.astimezone(UTC) == utc(2027, 10, 31, 0, 30)


def test_naive_timestamp_in_the_fall_back_fold_is_the_first_occurrence() -> None:
    instant = LONDON.instant("updated_at", "2027-10-31 01:30:00")
    assert instant.astimezone(UTC) == utc(2027, 10, 31, 0, 30)


def test_postgres_timestamptz_at_utc() -> None:
    assert LONDON.instant("updated_at", "2026-06-01 12:00:00+00") == utc(2026, 6, 1, 12)


def test_postgres_timestamptz_with_fraction_and_half_hour_offset() -> None:
    instant = LONDON.instant("updated_at", "2026-06-01 12:00:00.123456+05:30")
    assert instant == datetime(2026, 6, 1, 6, 30, 0, 123456, tzinfo=UTC)


def test_iso_8601_zulu() -> None:
    assert LONDON.instant("updated_at", "2026-06-01T12:00:00Z") == utc(2026, 6, 1, 12)


def test_offset_instant_needs_no_zone() -> None:
    assert NO_ZONE.instant("updated_at", "2026-06-01T12:00:00Z") == utc(2026, 6, 1, 12)


def test_naive_timestamp_is_read_in_the_wedding_zone(host_far_east: None) -> None:
    assert LONDON.instant("updated_at", "2026-06-01 12:00:00") == utc(2026, 6, 1, 11)


def test_naive_timestamp_without_zone_is_refused(host_far_east: None) -> None:
    with pytest.raises(TimeRefused, match=r"ev-1.*updated_at"):
        NO_ZONE.instant("updated_at", "2026-06-01 12:00:00")


def test_postgres_infinity_is_refused() -> None:
    with pytest.raises(TimeRefused, match="infinity"):
        LONDON.instant("updated_at", "infinity")


def test_epoch_ms_is_exact_to_the_millisecond() -> None:
    moment = datetime(2026, 6, 1, 12, 0, 0, 123999, tzinfo=timezone(timedelta(hours=5)))
    assert WeddingClock.epoch_ms(moment) == 1_780_297_200_123


def test_time_of_day_keeps_the_offset() -> None:
    assert LONDON.time_of_day("ceremony_time", "14:30+02") == time(
        14, 30, tzinfo=timezone(timedelta(hours=2))
    )
