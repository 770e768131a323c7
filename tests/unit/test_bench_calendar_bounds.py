"""`python -m bench calendar` stays bounded in count and time, and sends what Google sends:
valid channel tokens and a new message number per push."""

from __future__ import annotations

import pytest
from bench import calendar, calendar_feed
from streams.logic.calendar.channels import verify_token


def test_the_burst_is_at_most_20000_pushes_over_10000_calendars_within_10_s() -> None:
    assert calendar.PUSHES <= 20_000 and calendar.CALENDARS <= 10_000
    assert calendar.BURST_S <= 10
    assert (calendar.HOUR_CALENDARS, calendar.HOUR_PUSHES) <= (10_000, 20_000)


def test_the_change_part_runs_the_issues_10000_calendars_by_default() -> None:
    assert calendar.change_calendars({}) == 10_000


def test_the_change_part_takes_up_to_10000_calendars() -> None:
    assert calendar.change_calendars({"BENCH_CALENDAR_CHANGE_CALENDARS": "10000"}) == 10_000


@pytest.mark.parametrize("raw", ["10001", "199", "many"])
def test_a_change_part_size_out_of_bounds_is_refused(raw: str) -> None:
    with pytest.raises(SystemExit, match="BENCH_CALENDAR_CHANGE_CALENDARS"):
        calendar.change_calendars({"BENCH_CALENDAR_CHANGE_CALENDARS": raw})


def test_every_push_carries_a_token_that_verifies_for_its_channel() -> None:
    keys = [calendar.KEY.encode()]
    for headers in calendar.pushes(50, 200, first_number=7):
        channel = headers["X-Goog-Channel-ID"]
        integration = verify_token(keys, headers["X-Goog-Channel-Token"], channel)
        assert integration == calendar_feed.integration(int(channel.rsplit("-", 1)[1]))


def test_every_push_has_its_own_message_number() -> None:
    numbers = [h["X-Goog-Message-Number"] for h in calendar.pushes(50, 200, first_number=7)]
    assert len(set(numbers)) == 200 and min(numbers, key=int) == "7"


def test_the_burst_names_the_same_calendars_in_every_run() -> None:
    first = calendar_feed.burst_targets(100, 300)
    assert first == calendar_feed.burst_targets(100, 300)
    assert all(0 <= i < 100 for i in first)


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (calendar.percentile(values, 0.5), calendar.percentile(values, 0.99)) == (50.0, 99.0)
