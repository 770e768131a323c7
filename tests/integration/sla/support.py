"""Helpers of the SLA agent's integration tests."""

from __future__ import annotations

from typing import Any

from streams.kafka.codec import TopicCodecs
from streams.kafka.replay import read_topic
from streams.topics import SLA_EVENTS, Topic


def read_all(bootstrap: str, codecs: TopicCodecs, topic: Topic) -> list[tuple[str, Any]]:
    """Every (key, decoded value) `topic` holds now; None for a tombstone."""
    codec, out = codecs[topic], []

    def apply(m: Any) -> None:
        value = m.value()
        out.append(((m.key() or b"").decode(), None if value is None else codec.decode(value)))

    read_topic(bootstrap, topic, apply, timeout=10)
    return out


def sla_events(bootstrap: str, codecs: TopicCodecs) -> list[dict[str, Any]]:
    return [value for _key, value in read_all(bootstrap, codecs, SLA_EVENTS)]
