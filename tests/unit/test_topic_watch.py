"""Data loss is told from a watched topic's identity (`streams.kafka.topic_watch`)."""

from __future__ import annotations

import pytest
from streams.errors import BrokerDataLost
from streams.kafka.topic_watch import NULL_ID, TopicWatch, changed
from streams.topics import INGEST_CDC, INGEST_STATE

CDC, STATE = INGEST_CDC.name, INGEST_STATE.name


def test_the_same_ids_are_no_loss() -> None:
    assert changed({CDC: "a", STATE: "b"}, {CDC: "a", STATE: "b"}) == []


def test_a_recreated_topic_is_a_loss() -> None:
    assert changed({STATE: "b"}, {STATE: "c"}) == [f"{STATE} (recreated)"]


def test_a_topic_gone_is_a_loss() -> None:
    assert changed({STATE: "b"}, {STATE: None}) == [f"{STATE} (gone)"]


def test_a_topic_never_seen_is_no_loss() -> None:
    assert changed({}, {STATE: None}) == []


def test_the_watch_raises_when_two_checks_in_a_row_see_the_loss() -> None:
    watch = TopicWatch()
    watch.check({STATE: "b"})
    watch.check({STATE: "c"})
    with pytest.raises(BrokerDataLost, match="recreated"):
        watch.check({STATE: "c"})


def test_a_topic_missing_from_one_answer_is_forgiven() -> None:
    watch = TopicWatch()
    watch.check({STATE: "b"})
    watch.check({STATE: None})
    watch.check({STATE: "b"})
    watch.check({STATE: "b"})
    assert watch.seen == {STATE: "b"}


def test_a_broker_without_topic_ids_is_not_watched() -> None:
    watch = TopicWatch()
    watch.check({STATE: NULL_ID})
    watch.check({STATE: None})
    watch.check({STATE: None})
    assert watch.seen == {}
