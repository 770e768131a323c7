"""The delivery ledger's state, folded from delivery-result records: pure.

Every attempt of every sink publishes a result on `wedsync.delivery.results`. Folding them
tells a sink process, before it delivers a record:

- `processed`: this consumed record (topic, partition, offset) already has a result: it was
  handled before a crash or rebalance and only its offset commit was lost. Skip it quietly.
- `delivered`: the delivery (its id) was already done, perhaps from another copy of the
  record (the router re-produced it): record a `skipped_duplicate`, do not send again.
- `stale`: a newer version of the same aggregate, for the same event type, was already
  delivered to the same target: record `skipped_stale` (a retry must never overwrite a
  newer change). Other event types of the aggregate are other news (a form response is not
  superseded by a profile update of the same couple) and are never stale. Customer webhooks
  are never stale either: they are an event log (Standard Webhooks delivers every message and
  receivers order by timestamp), and their events of one supplier share its aggregate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Decision = Literal["deliver", "processed", "delivered", "stale"]

TERMINAL_DONE = frozenset({"delivered", "skipped_duplicate"})
EVENT_LOGS = frozenset({"webhook"})  # destinations that get every event, in any order


@dataclass
class LedgerState:
    destination: str
    processed: dict[tuple[str, int], set[int]] = field(default_factory=dict)
    delivered: set[str] = field(default_factory=set)
    versions: dict[tuple[str, str, str], int] = field(default_factory=dict)
    results: int = 0

    def apply(self, result: dict[str, Any]) -> None:
        """Fold one delivery-result record (results of other destinations are ignored)."""
        if result.get("destination") != self.destination:
            return
        self.results += 1
        topic = result.get("source_topic") or ""
        if topic:
            key = (topic, int(result.get("source_partition") or 0))
            self.processed.setdefault(key, set()).add(int(result.get("source_offset") or 0))
        if result.get("outcome") in TERMINAL_DONE:
            self.delivered.add(result["delivery_id"])
        if result.get("outcome") == "delivered":
            version_key = (
                result["target"],
                result.get("aggregate_id") or "",
                result.get("event_type", ""),
            )
            version = int(result.get("aggregate_version") or -1)
            if version > self.versions.get(version_key, -1):
                self.versions[version_key] = version

    def decide(
        self,
        record: dict[str, Any],
        target: str,
        source: tuple[str, int, int],
    ) -> Decision:
        """What to do with `record` (consumed at `source`) for `target`. A replay from the
        dead-letter topic is decided the same way: replaying must not send twice nor
        overwrite newer data."""
        topic, partition, offset = source
        if offset in self.processed.get((topic, partition), ()):
            return "processed"
        if record["delivery_id"] in self.delivered:
            return "delivered"
        if self.destination in EVENT_LOGS:
            return "deliver"
        newest = self.versions.get((target, record["aggregate_id"], record["event_type"]))
        if newest is not None and record["aggregate_version"] < newest:
            return "stale"
        return "deliver"

    def forget_below(self, topic: str, partition: int, committed: int) -> None:
        """Drop processed offsets below a committed position: they can never be read again
        by this group."""
        seen = self.processed.get((topic, partition))
        if seen:
            self.processed[(topic, partition)] = {o for o in seen if o >= committed}
