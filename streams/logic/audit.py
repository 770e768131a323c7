"""Reconciliation of the whole pipeline over a window of source changes: pure.

`wedsync audit` (streams/audit.py) reads the records; this module joins them by the ids the
records already carry and says, for every source change committed in the window, whether each
of its expected deliveries has a final outcome:

    source change     wedsync.ingest.cdc / .webhooks: position, LSN, commit time
      -> events       wedsync.events, by the ids `normalize_change` / `normalize_webhook`
                      recompute from the change (a change with no rule is a counted skip);
                      or a dead letter of the change on wedsync.events.dlq (its position)
      -> deliveries   wedsync.deliver.<kind> (+ .retry), by event_id; or a routing dead
                      letter (the event's position); or a seen marker: routed to no one
      -> outcome      wedsync.delivery.results, by delivery_id: final (delivered,
                      skipped_duplicate, skipped_stale, dead_lettered, rejected) or waiting
                      (retry_scheduled, paused)

A missing link is judged by the committed offset of the stage that reads the input:

    LOST        the stage's consumer group committed past the input (it will never be read
                again) and no output, dead letter or outcome exists: silently gone
    PENDING     the stage has not committed past it yet (still to be read, held for a retry
                that is not due, or being processed now): look again later
    UNVERIFIED  routed to no one can only be proven from the seen markers, which are kept for
                a limited time; an event older than them with no delivery cannot be judged

An in-app delivery has no ledger (the deliver topic is the inbox clients resume from): being
routed is its final outcome.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from streams import topics
from streams.logic.normalize import RULES, normalize_change, normalize_webhook
from streams.models import DomainEvent, SourceRef

FINAL = ("delivered", "skipped_duplicate", "skipped_stale", "dead_lettered", "rejected")
WAITING = frozenset({"retry_scheduled", "paused"})
LEDGERLESS = frozenset({topics.Destination.INAPP.value})
SOURCE_TOPICS = (topics.INGEST_CDC.name, topics.INGEST_WEBHOOKS.name)


class Status(StrEnum):
    LOST = "lost"
    PENDING = "pending"
    UNVERIFIED = "unverified"


@dataclass(frozen=True, order=True)
class Position:
    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


@dataclass(frozen=True)
class DeadLetter:
    """A record on wedsync.events.dlq: `source` is where the dead-lettered record was read
    (a source change for the normalize stage, an event for routing)."""

    source: Position
    stage: str
    error_class: str
    reason: str


@dataclass
class Observed:
    """What the reader found. `committed` maps (topic, partition) to the committed offset of
    the group that reads that topic (normalize: the worker's group on the source topics;
    route: on wedsync.events; each sink's group on its deliver and retry topics).
    `seen_since_ms`: seen markers cover events routed after this time (None: all)."""

    sources: list[tuple[Position, dict[str, Any]]] = field(default_factory=list)
    events: list[tuple[Position, dict[str, Any]]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    deliveries: list[tuple[Position, str, dict[str, Any]]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    committed: dict[tuple[str, int], int] = field(default_factory=dict)
    seen_since_ms: int | None = None


@dataclass(frozen=True)
class Finding:
    stage: str  # normalize | route | deliver
    status: Status
    source: str  # the change: table:key or webhook:source:id
    detail: str
    committed_ms: int = 0  # the change's commit time
    event_id: str | None = None
    delivery_id: str | None = None
    destination: str | None = None

    def line(self) -> str:
        ids = " ".join(
            f"{name}={value}"
            for name, value in (("event", self.event_id), ("delivery", self.delivery_id))
            if value
        )
        where = f" {self.destination}" if self.destination else ""
        head = f"{self.status.value.upper():10} {self.stage:9}{where} {self.source}"
        return f"{head} (committed {_ts(self.committed_ms)}) {ids}: {self.detail}"


@dataclass
class DeliveryAudit:
    delivery_id: str
    destination: str
    target: str
    outcome: str | None  # the final outcome, else the last waiting one, else None
    status: Status | None  # None: final


@dataclass
class EventAudit:
    event_id: str
    event_type: str
    found: bool
    routing: str | None  # routed | to_no_one | dead_lettered | None (not routed)
    status: Status | None
    deliveries: list[DeliveryAudit] = field(default_factory=list)


@dataclass
class ChangeAudit:
    source: str  # table:primary key, or webhook:<source>:<delivery id>
    row: dict[str, Any]  # the after image (before for a delete; the body for a webhook)
    position: Position
    committed_ms: int
    lsn: int | None
    skipped: str | None  # why no event is expected (a counted skip), else None
    dead_lettered: bool
    status: Status | None  # of the normalize stage; None: its events exist
    events: list[EventAudit] = field(default_factory=list)


@dataclass
class Audit:
    changes: list[ChangeAudit]
    findings: list[Finding]

    @property
    def lost(self) -> list[Finding]:
        return [f for f in self.findings if f.status is Status.LOST]

    @property
    def pending(self) -> list[Finding]:
        return [f for f in self.findings if f.status is Status.PENDING]

    def deliveries(self) -> Iterable[tuple[ChangeAudit, EventAudit, DeliveryAudit]]:
        for change in self.changes:
            for event in change.events:
                for delivery in event.deliveries:
                    yield change, event, delivery

    def summary(self) -> list[str]:
        """Counts per stage and per destination, one line each."""
        skipped = Counter(c.skipped for c in self.changes if c.skipped)
        lines = [
            f"source    {len(self.changes)} changes"
            + (f"; counted skips: {_counts(skipped)}" if skipped else "")
        ]
        events = [e for c in self.changes for e in c.events]
        norm = Counter(
            "dead_lettered" if c.dead_lettered else (c.status.value if c.status else "ok")
            for c in self.changes
            if not c.skipped
        )
        lines.append(
            f"normalize {len(events)} events expected, {sum(e.found for e in events)} on "
            f"{topics.EVENTS.name}; changes: {_counts(norm)}"
        )
        routing = Counter(
            e.routing or (e.status.value if e.status else "?") for e in events if e.found
        )
        lines.append(f"route     {sum(e.found for e in events)} events: {_counts(routing)}")
        by_dest: dict[str, Counter[str]] = {}
        for _, _, d in self.deliveries():
            label = d.status.value if d.status else (d.outcome or "routed")
            by_dest.setdefault(d.destination, Counter())[label] += 1
        for dest, counts in sorted(by_dest.items()):
            lines.append(f"deliver   {dest:8} {sum(counts.values())}: {_counts(counts)}")
        return lines


def _counts(counter: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {name}" for name, n in sorted(counter.items(), key=lambda kv: -kv[1]))


def _ts(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


# ---- the source side ------------------------------------------------------------------------
def source_ts_ms(record: Mapping[str, Any]) -> int:
    return int(record.get("source_ts_ms") or 0)


def _ref(position: Position, record: Mapping[str, Any]) -> SourceRef:
    if position.topic == topics.INGEST_WEBHOOKS.name:
        return SourceRef(kind="webhook", topic=position.topic, partition=position.partition,
                         offset=position.offset, lsn=None, commit_lsn=None, state_lsn=None,
                         delivery_id=record.get("delivery_id"), table=None)  # fmt: skip
    src = record["source"]
    return SourceRef(kind="cdc", topic=position.topic, partition=position.partition,
                     offset=position.offset, lsn=src.get("lsn"), commit_lsn=src.get("commit_lsn"),
                     state_lsn=src.get("state_lsn"), delivery_id=None,
                     table=src.get("table"))  # fmt: skip


def expected_events(position: Position, record: Any) -> list[DomainEvent]:
    """The domain events the normalize stage must produce for this source record (the same
    pure functions it runs). Raises what they raise for a record it must dead-letter."""
    if position.topic == topics.INGEST_WEBHOOKS.name:
        return normalize_webhook(record, _ref(position, record))
    return normalize_change(record, _ref(position, record))


def _label(position: Position, record: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    if position.topic == topics.INGEST_WEBHOOKS.name:
        return f"webhook:{record.get('source')}:{record.get('delivery_id')}", {}
    row = record.get("after") or record.get("before") or {}
    pk = ",".join(str(row.get(col)) for col in record.get("primary_key") or ())
    return f"{record['source']['table']}:{pk}", dict(row)


def _skip_reason(record: Mapping[str, Any]) -> str:
    if record.get("op") == "r":
        return "snapshot read"
    table = (record.get("source") or {}).get("table")
    if table is not None and table not in RULES:
        return f"no rule for {table}"
    return "means nothing routed"


def expected_event_ids(observed: Observed, since_ms: int, until_ms: int) -> set[str]:
    """Ids of every event the window's changes must produce (for a reader that keeps only
    the records it needs)."""
    ids: set[str] = set()
    for position, record in observed.sources:
        if since_ms <= source_ts_ms(record) <= until_ms:
            try:
                ids.update(e["event_id"] for e in expected_events(position, record))
            except Exception:  # normalize dead-letters it; `reconcile` judges it
                continue
    return ids


# ---- the join -------------------------------------------------------------------------------
class _Join:
    def __init__(self, observed: Observed) -> None:
        self.o = observed
        self.findings: list[Finding] = []
        self.events: dict[str, list[Position]] = {}
        for position, event in observed.events:
            self.events.setdefault(event["event_id"], []).append(position)
        self.letters: dict[Position, DeadLetter] = {d.source: d for d in observed.dead_letters}
        self.by_event: dict[str, dict[str, list[tuple[Position, str, dict[str, Any]]]]] = {}
        for position, dest, record in observed.deliveries:
            per_event = self.by_event.setdefault(record["event_id"], {})
            per_event.setdefault(record["delivery_id"], []).append((position, dest, record))
        self.results: dict[str, list[dict[str, Any]]] = {}
        for result in observed.results:
            self.results.setdefault(result["delivery_id"], []).append(result)
        # the highest input offset each stage is known to have processed, per partition:
        # events name their source position, results the record they answer
        self.processed: dict[tuple[str, int], int] = {}
        inputs = [(e["source"]["topic"], e["source"]["partition"], e["source"]["offset"])
                  for _, e in observed.events if isinstance(e.get("source"), dict)]  # fmt: skip
        inputs += [(r["source_topic"], r["source_partition"], r["source_offset"])
                   for r in observed.results]  # fmt: skip
        for topic, partition, offset in inputs:
            key = (topic, partition)
            self.processed[key] = max(offset, self.processed.get(key, -1))

    def passed(self, position: Position) -> int | None:
        """The group's committed offset when it is past `position`, else None."""
        committed = self.o.committed.get((position.topic, position.partition))
        return committed if committed is not None and committed > position.offset else None

    def note(self, stage: str, status: Status, change: ChangeAudit, detail: str,
             **ids: str | None) -> Status:  # fmt: skip
        self.findings.append(
            Finding(stage, status, change.source, detail, change.committed_ms, **ids)
        )
        return status

    # ---- stages ----------------------------------------------------------------------------
    def change(self, copies: list[tuple[Position, dict[str, Any]]]) -> ChangeAudit:
        position, record = min(copies, key=lambda c: c[0])
        label, row = _label(position, record)
        src = record.get("source") if isinstance(record.get("source"), dict) else {}
        audit = ChangeAudit(label, row, position, source_ts_ms(record),
                            (src or {}).get("lsn"), None, False, None)  # fmt: skip
        letter = next((self.letters[p] for p, _ in copies if p in self.letters), None)
        try:
            expected = expected_events(position, record)
        except Exception as exc:
            if letter is not None:
                audit.dead_lettered = True
                return audit
            where = f"normalize raised {type(exc).__name__}: {exc}"
            audit.status = self._missing("normalize", audit, [p for p, _ in copies], where)
            return audit
        if not expected:
            audit.skipped = _skip_reason(record)
            return audit
        for event in expected:
            audit.events.append(self.event(audit, event, [p for p, _ in copies], letter))
        if letter is not None and not all(e.found for e in audit.events):
            audit.dead_lettered = True
        missing = [e for e in audit.events if not e.found]
        if missing and not audit.dead_lettered:
            statuses = {e.status for e in missing}
            audit.status = Status.LOST if Status.LOST in statuses else Status.PENDING
        return audit

    def _missing(self, stage: str, change: ChangeAudit, copies: list[Position], what: str,
                 **ids: str | None) -> Status:  # fmt: skip
        past = [(p, c) for p in copies if (c := self.passed(p)) is not None]
        if past:
            p, committed = past[0]
            return self.note(stage, Status.LOST, change,
                             f"{what}; {p} is below its group's committed offset {committed}",
                             **ids)  # fmt: skip
        first = min(copies)
        what = f"{what}; {first} not yet committed by its group"
        later = self.processed.get((first.topic, first.partition))
        if later is not None and later > first.offset:
            what += f", which has processed offset {later} of that partition: stuck behind it"
        return self.note(stage, Status.PENDING, change, what, **ids)

    def event(self, change: ChangeAudit, expected: DomainEvent, sources: list[Position],
              letter: DeadLetter | None) -> EventAudit:  # fmt: skip
        event_id = expected["event_id"]
        audit = EventAudit(event_id, expected["event_type"], event_id in self.events, None, None)
        if not audit.found:
            if letter is None:
                audit.status = self._missing(
                    "normalize", change, sources,
                    f"{expected['event_type']} expected, not on {topics.EVENTS.name} and no "
                    "dead letter of the change",
                    event_id=event_id,
                )  # fmt: skip
            return audit
        copies = self.events[event_id]
        deliveries = self.by_event.get(event_id, {})
        letters = [self.letters[p] for p in copies if p in self.letters]
        if deliveries:
            audit.routing = "routed"
        elif letters:
            audit.routing = "dead_lettered"
        elif event_id in self.o.seen:
            audit.routing = "to_no_one"
        else:
            audit.status = self._unrouted(change, expected, copies)
        for delivery_id, delivery_copies in sorted(deliveries.items()):
            audit.deliveries.append(self.delivery(change, event_id, delivery_id, delivery_copies))
        return audit

    def _unrouted(
        self, change: ChangeAudit, expected: DomainEvent, copies: list[Position]
    ) -> Status:
        what = (f"{expected['event_type']} on {', '.join(map(str, copies))}: no delivery, no "
                "seen marker and no dead letter")  # fmt: skip
        event_id = expected["event_id"]
        horizon = self.o.seen_since_ms
        if horizon is not None and change.committed_ms < horizon and any(map(self.passed, copies)):
            what += f"; routed before the oldest seen marker kept ({_ts(horizon)})"
            return self.note("route", Status.UNVERIFIED, change, what, event_id=event_id)
        return self._missing("route", change, copies, what, event_id=event_id)

    def delivery(self, change: ChangeAudit, event_id: str, delivery_id: str,
                 copies: list[tuple[Position, str, dict[str, Any]]]) -> DeliveryAudit:  # fmt: skip
        _, dest, record = copies[0]
        target = str(record.get("endpoint_id") or record.get("channel") or
                     record.get("to_address") or record.get("recipient_id") or "")  # fmt: skip
        audit = DeliveryAudit(delivery_id, dest, target, None, None)
        if dest in LEDGERLESS:
            return audit
        results = self.results.get(delivery_id, [])
        outcomes = {r["outcome"] for r in results}
        final = next((o for o in FINAL if o in outcomes), None)
        if final is not None:
            audit.outcome = final
            return audit
        waiting = sorted((r for r in results if r["outcome"] in WAITING),
                         key=lambda r: (r["completed_at_ms"], r["attempt"]))  # fmt: skip
        audit.outcome = waiting[-1]["outcome"] if waiting else None
        answered = {Position(r["source_topic"], r["source_partition"], r["source_offset"])
                    for r in results}  # fmt: skip
        unanswered = [p for p, _, _ in copies if p not in answered]
        ids: dict[str, str | None] = {"event_id": event_id, "delivery_id": delivery_id,
                                      "destination": dest}  # fmt: skip
        if unanswered or not waiting:
            what = "no outcome recorded"
            audit.status = self._missing(
                "deliver", change, unanswered or [copies[0][0]], what, **ids
            )
            return audit
        last = waiting[-1]
        consumed = Position(last["source_topic"], last["source_partition"], last["source_offset"])
        what = (
            f"last outcome {last['outcome']} (attempt {last['attempt']}, "
            f"{_ts(last['completed_at_ms'])}) and no later copy on the retry topic"
        )
        audit.status = self._missing("deliver", change, [consumed], what, **ids)
        return audit


def reconcile(observed: Observed, since_ms: int, until_ms: int) -> Audit:
    """Every source change committed in [since_ms, until_ms] (its `source_ts_ms`), joined to
    its events, deliveries and outcomes; findings for every link without a final outcome."""
    join = _Join(observed)
    by_id: dict[str, list[tuple[Position, dict[str, Any]]]] = {}
    for position, record in observed.sources:
        if since_ms <= source_ts_ms(record) <= until_ms:
            by_id.setdefault(record["event_id"], []).append((position, record))
    changes = [join.change(copies) for copies in by_id.values()]
    changes.sort(key=lambda c: (c.committed_ms, c.position))
    return Audit(changes, join.findings)
