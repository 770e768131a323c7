"""The delivery ledger's state, folded from delivery-result records: pure.

Every attempt of every sink publishes a result on `wedsync.delivery.results`. Folding them
tells a sink process, before it delivers a record:

- `processed`: this consumed record (topic, partition, offset) already has a result: it was
  handled before a crash or rebalance and only its offset commit was lost. Skip it quietly.
- `delivered`: the delivery (its id) was already done, perhaps from another copy of the
  record (the router re-produced it): record a `skipped_duplicate`, do not send again.
- `stale`: a newer version of the same entity state was already delivered to the same
  target: record `skipped_stale`, naming that delivery (`superseded_by`): a retry must never
  overwrite a newer change. Which deliveries are versions of one entity is declared in
  `streams.logic.entities` (one wedding's date, one booking, one vendor's status); every
  other delivery is a fact (a form response, a milestone, a conflict notice) and is never
  stale, so a retried one is delivered however many newer ones of its supplier went out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from streams.logic.entities import EntityKey, entity_of

Decision = Literal["deliver", "processed", "delivered", "stale"]

TERMINAL_DONE = frozenset({"delivered", "skipped_duplicate"})

VersionKey = tuple[str, EntityKey]  # (target, entity)


@dataclass
class LedgerState:
    destination: str
    processed: dict[tuple[str, int], set[int]] = field(default_factory=dict)
    delivered: set[str] = field(default_factory=set)
    # per target and entity: the newest version delivered there, and its delivery id
    versions: dict[VersionKey, tuple[int, str]] = field(default_factory=dict)
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
        if result.get("outcome") != "delivered":
            return
        version_key = self._version_key(result, result["target"])
        if version_key is None:
            return
        version = int(result.get("aggregate_version") or -1)
        if version > self.versions.get(version_key, (-1, ""))[0]:
            self.versions[version_key] = (version, result["delivery_id"])

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
        if self.superseded_by(record, target) is not None:
            return "stale"
        return "deliver"

    def superseded_by(self, record: dict[str, Any], target: str) -> str | None:
        """The id of the delivery that makes `record` stale at `target`: the newest version
        of the same entity state delivered there, when it is newer than `record`'s. None
        when `record` is a fact or nothing newer of its entity went out."""
        version_key = self._version_key(record, target)
        newest = None if version_key is None else self.versions.get(version_key)
        if newest is None or int(record["aggregate_version"]) >= newest[0]:
            return None
        return newest[1]

    def forget_below(self, topic: str, partition: int, committed: int) -> None:
        """Drop processed offsets below a committed position: they can never be read again
        by this group."""
        seen = self.processed.get((topic, partition))
        if seen:
            self.processed[(topic, partition)] = {o for o in seen if o >= committed}

    def _version_key(self, record: dict[str, Any], target: str) -> VersionKey | None:
        entity = entity_of(
            self.destination, record.get("event_type", ""), record.get("aggregate_id") or ""
        )
        return None if entity is None else (target, entity)
