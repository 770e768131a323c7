"""The process-wide collector tuning every long-running process applies (streams.collect)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from streams.collect import YOUNG, collect_less


@pytest.fixture(autouse=True)
def collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()


def test_young_garbage_is_collected_less_often_and_what_exists_is_frozen() -> None:
    gc.set_threshold(700, 10, 10)
    collect_less()
    assert gc.get_threshold() == (YOUNG, 10, 10)
    assert gc.get_freeze_count() > 0


def test_a_higher_threshold_set_before_is_kept() -> None:
    gc.set_threshold(50_000, 20, 20)
    collect_less()
    assert gc.get_threshold() == (50_000, 20, 20)


def test_older_generations_are_raised_when_asked() -> None:
    gc.set_threshold(700, 10, 10)
    collect_less(50_000, 20, 20)
    assert gc.get_threshold() == (50_000, 20, 20)
