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

What a sink reads at start is bounded, whatever the history (`connectors.sinks.ledger_reader`):

- `versions` (the stale check, and the copy check of entity deliveries) come from the
  compacted `wedsync.delivery.ledger.<kind>` topic: for every (target, entity) the delivered
  result of its newest version (`kept_keys` says which results to keep there, `apply_kept`
  folds them back). Its keys grow with distinct (target, entity) pairs, the state of the
  world, never with results: ten million results about 100,000 weddings are 100,000 keys
  per target.
- `processed` needs only the results of records at or after the group's committed offsets:
  records before them are never read again by the group. Those records were produced no
  earlier than the oldest uncommitted one, and a result is written after its record was read,
  so the results written since that record's timestamp (minus a clock-skew margin) hold them
  all (`window_start_ms`).
- `delivered` (a copy of a delivered fact: routing producing a delivery again after it
  restarted) is folded from the same recent window, widened to at least `copy_window` before
  now; replayed dead letters that were delivered are kept in the compacted topic too, so
  replaying twice never sends twice however long after.

So memory at start is (target, entity) pairs + replays + the results of the window (the
uncommitted records and the copy window), not the results of the topic's retention.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from streams.logic.entities import EntityKey, entity_of

Decision = Literal["deliver", "processed", "delivered", "stale"]

TERMINAL_DONE = frozenset({"delivered", "skipped_duplicate"})

VersionKey = tuple[str, EntityKey]  # (target, entity)

SEP = "\x1f"  # ASCII unit separator: between the parts of a compacted-ledger key
BACKFILLED = "~backfilled"  # the compacted ledger's marker: backfilled from the results once
REPLAY = "replay"  # key prefix of a replayed dead letter's delivered result


def window_start_ms(
    now_ms: int, oldest_uncommitted_ms: int | None, *, copy_window_ms: int, skew_ms: int
) -> int:
    """Where a sink's start reads the results from (a timestamp): `copy_window_ms` before now,
    or earlier to the oldest uncommitted record's timestamp (minus `skew_ms`: another host's
    clock stamped it) when there is one. None: nothing uncommitted."""
    start = now_ms - copy_window_ms
    if oldest_uncommitted_ms is not None:
        start = min(start, oldest_uncommitted_ms - skew_ms)
    return max(0, start)


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

    def kept_keys(self, result: dict[str, Any], *, replayed: bool = False) -> list[str]:
        """The compacted-ledger keys `result` (already `apply`d) must be written under: the
        (target, entity) key when it is now that entity's newest delivered version there;
        the replay key when it is a replayed dead letter's terminal success."""
        if result.get("destination") != self.destination:
            return []
        keys = []
        if result.get("outcome") == "delivered":
            version_key = self._version_key(result, result["target"])
            newest = None if version_key is None else self.versions.get(version_key)
            if version_key is not None and newest and newest[1] == result["delivery_id"]:
                keys.append(SEP.join((version_key[0], *version_key[1])))
        if replayed and result.get("outcome") in TERMINAL_DONE:
            keys.append(SEP.join((REPLAY, result["delivery_id"])))
        return keys

    def apply_kept(self, result: dict[str, Any]) -> None:
        """Fold one result read back from the compacted ledger: its delivery is done and
        its version counts; its source position does not (it names a record long committed,
        on a log that may since have been recreated)."""
        self.apply({**result, "source_topic": None})

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
