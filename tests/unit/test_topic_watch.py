"""Data loss is told from end offsets going backwards (`streams.kafka.topic_watch`)."""

from __future__ import annotations

import pytest
from streams.errors import BrokerDataLost
from streams.kafka.topic_watch import TopicWatch, regressed
from streams.topics import INGEST_CDC, INGEST_STATE

CDC0 = (INGEST_CDC.name, 0)
STATE = (INGEST_STATE.name, 0)


def test_growing_end_offsets_are_no_loss() -> None:
    assert regressed({CDC0: 10}, {CDC0: 12}) == []


def test_an_end_offset_below_the_one_seen_is_a_loss() -> None:
    assert regressed({CDC0: 10, STATE: 4}, {CDC0: 0, STATE: 4}) == [f"{CDC0[0]}[0] 10 -> 0"]


def test_a_partition_gone_is_a_loss() -> None:
    assert regressed({STATE: 4}, {STATE: None}) == [f"{STATE[0]}[0] 4 -> None"]


def test_a_partition_never_seen_is_no_loss() -> None:
    assert regressed({}, {STATE: None}) == []


def test_the_watch_raises_when_two_checks_in_a_row_see_the_loss() -> None:
    watch = TopicWatch()
    watch.check({STATE: 30})
    watch.check({STATE: 0})  # once: a lagging high watermark, perhaps
    with pytest.raises(BrokerDataLost, match=r"30 -> 0"):
        watch.check({STATE: 0})


def test_a_high_watermark_that_lags_once_is_forgiven() -> None:
    watch = TopicWatch()
    watch.check({STATE: 30})
    watch.check({STATE: 29})
    watch.check({STATE: 31})
    watch.check({STATE: 31})
    assert watch.seen == {STATE: 31}
