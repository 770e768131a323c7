"""Notice when the cluster loses data a process relies on, and say so.

A process that keeps state built from Kafka (the Faust worker's tables, from their
changelogs) cannot go on when the cluster loses that data: the embedded broker restarted
empty, or a topic was deleted and recreated. Kafka does not tell a client that, and a
broker that creates topics on demand (Tansu does, whatever the client asks) even hides a
vanished topic. What a client can always see: a partition's end offset only grows (retention
and compaction remove records below it, never the offset itself), so an end offset below
one seen before, or a partition gone, means the data was lost. `regressed` is that decision
(pure); `TopicWatch` keeps the highest end offsets seen and raises `BrokerDataLost` naming
the partitions, so the process exits with what happened and what to do instead of stalling
or restarting a child forever (`streams.worker`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from streams.errors import BrokerDataLost

Partition = tuple[str, int]


def regressed(seen: Mapping[Partition, int], now: Mapping[Partition, int | None]) -> list[str]:
    """The partitions whose end offset is now below the highest seen, or that are gone
    (None), as 'topic[partition] seen -> now'."""
    return [
        f"{topic}[{partition}] {before} -> {now.get((topic, partition))}"
        for (topic, partition), before in sorted(seen.items())
        if (topic, partition) in now
        and (now[(topic, partition)] is None or now[(topic, partition)] < before)  # type: ignore[operator]
    ]


@dataclass
class TopicWatch:
    """Call `check(end_offsets)` with the watched partitions' end offsets now and then.
    A regression counts when two checks in a row see it (a broker whose high watermark
    lags for a moment, as Tansu's can, is not a data loss)."""

    seen: dict[Partition, int] = field(default_factory=dict)
    suspect: bool = False

    def check(self, now: Mapping[Partition, int | None]) -> None:
        """Raises BrokerDataLost when a partition's end offset went backwards twice in a row."""
        lost = regressed(self.seen, now)
        if lost and not self.suspect:
            self.suspect = True
            return
        self.suspect = False
        if lost:
            raise BrokerDataLost(
                "the cluster no longer has records this process read (end offsets went "
                f"back: {', '.join(lost)}): its data was lost (an embedded broker restarted, "
                "topics deleted and recreated)"
            )
        for partition, end in now.items():
            if end is not None and end > self.seen.get(partition, -1):
                self.seen[partition] = end
