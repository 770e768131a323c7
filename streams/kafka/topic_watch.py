"""Notice when the cluster loses data a process relies on, and say so.

A process that keeps state built from Kafka (the Faust worker's tables, from their
changelogs) cannot go on when the cluster loses that data: a topic deleted and created
again, a cluster rebuilt under the same address. Kafka does not tell a client that. What a
client can see is the topic's identity: every topic has a topic id (a UUID, Kafka 2.8+)
that a recreated topic does not keep, and a topic gone from the metadata is gone. End
offsets are no evidence: a new leader after a failover can report a lower high watermark
for a while (the fault suite's controller kill tripped an end-offset watch). `changed` is
the decision (pure); `TopicWatch` keeps the ids seen and raises `BrokerDataLost` naming the
topics, so the process exits with what happened and what to do instead of stalling or
restarting a child forever (`streams.app.worker`). A broker that reports no topic ids (Tansu
0.6 answers the null id) cannot be watched this way: README, Known limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from streams.errors import BrokerDataLost

NULL_ID = "AAAAAAAAAAAAAAAAAAAAAA"  # Kafka's Uuid.ZERO_UUID as text: "no id"


def changed(seen: Mapping[str, str], now: Mapping[str, str | None]) -> list[str]:
    """The topics whose id is not the one seen before, or that are gone (None)."""
    return [
        f"{topic} ({'gone' if now[topic] is None else 'recreated'})"
        for topic, before in sorted(seen.items())
        if topic in now and now[topic] != before
    ]


@dataclass
class TopicWatch:
    """Call `check(topic_ids)` with the watched topics' ids now and then (None: the topic
    is not in the metadata). A change counts when two checks in a row see it."""

    seen: dict[str, str] = field(default_factory=dict)
    suspect: bool = False

    def check(self, now: Mapping[str, str | None]) -> None:
        """Raises BrokerDataLost when a watched topic was recreated or is gone, twice in a
        row."""
        lost = changed(self.seen, now)
        if lost and not self.suspect:
            self.suspect = True
            return
        self.suspect = False
        if lost:
            raise BrokerDataLost(
                f"the cluster no longer has the topics this process read: {', '.join(lost)}; "
                "its data was lost (topics deleted and created again, the cluster rebuilt)"
            )
        for topic, topic_id in now.items():
            if topic_id is not None and topic_id != NULL_ID:
                self.seen.setdefault(topic, topic_id)
