"""`streams.kafka.ready`: a consumer's ready records without waiting for a full batch."""

from __future__ import annotations

from dataclasses import dataclass, field

from streams.kafka.ready import ready


@dataclass
class Fetched:
    """A consumer holding `records` already fetched; records how it was asked."""

    records: list[str]
    waits: list[float] = field(default_factory=list)

    def poll(self, timeout: float) -> str | None:
        self.waits.append(timeout)
        return self.records.pop(0) if self.records else None

    def consume(self, num_messages: int, timeout: float) -> list[str]:
        self.waits.append(timeout)
        taken, self.records = self.records[:num_messages], self.records[num_messages:]
        return taken


def test_one_record_is_handed_over_without_waiting_for_a_batch() -> None:
    consumer = Fetched(["a"])
    assert ready(consumer, 500, 0.05) == ["a"]
    assert consumer.waits == [0.05, 0]  # only the first record is waited for


def test_what_is_already_fetched_comes_in_one_batch_up_to_the_limit() -> None:
    consumer = Fetched([str(n) for n in range(10)])
    assert ready(consumer, 4, 0.05) == ["0", "1", "2", "3"]
    assert consumer.records == ["4", "5", "6", "7", "8", "9"]


def test_nothing_within_the_timeout_is_an_empty_batch() -> None:
    consumer = Fetched([])
    assert ready(consumer, 500, 0.05) == []
    assert consumer.waits == [0.05]
