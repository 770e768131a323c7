"""The fault suite's verdict: per fault and destination, what the receivers counted next to
what the rows imply and what `wedsync audit` says, as a table and a list of problems."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from streams.logic.audit import Audit

from tests.faults.load import Row
from tests.faults.receivers import DESTINATIONS, Ledger

IDEMPOTENT = ("crm", "webhook")  # receivers that dedupe on the delivery's idempotency id
EVENT_DESTINATIONS = {
    "form.response_received": ("email", "crm", "slack"),
    "record.changed": ("webhook",),
}
WAITING = frozenset({"pending", "retry_scheduled", "paused"})


def row_states(report: Audit) -> dict[tuple[str, str], str]:
    """(row id, destination) -> what the audit says of that delivery: its final outcome
    (delivered, skipped_stale, ...), lost, pending, or unrouted (an event routed without a
    delivery to that destination)."""
    out: dict[tuple[str, str], str] = {}
    for change in report.changes:
        tag = str(change.row.get("id"))
        for event in change.events:
            dests = EVENT_DESTINATIONS.get(event.event_type, ())
            by_dest = {d.destination: d for d in event.deliveries}
            for dest in dests:
                d = by_dest.get(dest)
                if d is not None:
                    out[(tag, dest)] = d.status.value if d.status else (d.outcome or "?")
                elif event.status is not None:
                    out[(tag, dest)] = event.status.value
                elif not event.found:
                    out[(tag, dest)] = "dead_lettered" if change.dead_lettered else "lost"
                else:
                    out[(tag, dest)] = "unrouted" if event.routing else "pending"
    return out


@dataclass
class Window:
    """One fault's window: its rows, when the fault hit and when it was undone."""

    fault: str
    rows: list[Row]
    struck: float  # monotonic
    undone: float
    settled_s: float = 0.0  # from the end of the load until everything arrived or gave up
    notes: list[str] = field(default_factory=list)


@dataclass
class Line:
    fault: str
    dest: str
    expected: int
    delivered: int
    lost: int
    repeated: int
    second_effects: int
    dead_lettered: int
    recovery_s: float | None
    worst_s: float | None
    audit: str
    disagree: int = 0  # rows the audit and the receivers tell differently


def lines_of(window: Window, ledger: Ledger, states: dict[tuple[str, str], str]) -> list[Line]:
    out = []
    for dest in DESTINATIONS:
        delivered = repeated = second = dead = disagree = 0
        firsts_after: list[float] = []
        latencies: list[float] = []
        audit: Counter[str] = Counter()
        for row in window.rows:
            accepted = ledger.accepted(dest, row.tag)
            state = states.get((row.tag, dest), "not seen")
            if accepted:
                delivered += 1
                repeated += len(accepted) - 1
                second += max(0, len({r.idempotency_id for r in accepted}) - 1)
                latencies.append(accepted[0].at - row.inserted)
                if row.inserted >= window.struck:
                    firsts_after.append(accepted[0].at)
            elif state == "dead_lettered":
                dead += 1
            if not accepted:
                audit[state if state != "delivered" else "delivered, never received"] += 1
                disagree += state == "delivered"
            elif state != "delivered":
                audit[f"{state}, yet received"] += 1
                disagree += state in ("lost", "pending", "not seen")
        expected = len(window.rows)
        out.append(Line(
            window.fault, dest, expected, delivered, expected - delivered - dead, repeated,
            second if dest in IDEMPOTENT else 0, dead,
            min(firsts_after) - window.struck if firsts_after else None,
            max(latencies) if latencies else None,
            ", ".join(f"{n} {s}" for s, n in audit.most_common()) or "ok", disagree,
        ))  # fmt: skip
    return out


HEADER = (
    f"{'fault':22} {'dest':8} {'expected':>8} {'delivered':>9} {'lost':>5} {'repeated':>8} "
    f"{'2nd-effect':>10} {'dead-let':>8} {'recovery':>9} {'worst':>7}  audit"
)


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def table(lines: list[Line]) -> str:
    body = [
        f"{ln.fault:22} {ln.dest:8} {ln.expected:8} {ln.delivered:9} {ln.lost:5} "
        f"{ln.repeated:8} {ln.second_effects:10} {ln.dead_lettered:8} {_s(ln.recovery_s):>9} "
        f"{_s(ln.worst_s):>7}  {ln.audit}"
        for ln in lines
    ]
    return "\n".join([HEADER, "-" * len(HEADER), *body])


def evidence(report: Audit, rows: list[Row]) -> list[str]:
    """What the audit found for these rows, by stage, with the source positions of the
    changes lost before an event (contiguous offsets shown as ranges)."""
    tags = {r.tag for r in rows}
    changes = [c for c in report.changes if str(c.row.get("id")) in tags]
    sources = {c.source for c in changes}
    found = Counter(f"{f.stage} {f.status.value}" for f in report.findings if f.source in sources)
    out = [f"audit: {_counts(found)}"] if found else []
    lost_at: dict[int, list[int]] = {}
    for change in changes:
        if change.status is not None:
            lost_at.setdefault(change.position.partition, []).append(change.position.offset)
    if lost_at:
        where = "; ".join(f"[{p}]@{_ranges(o)}" for p, o in sorted(lost_at.items()))
        out.append(f"changes with no event: {changes[0].position.topic} {where}")
    return out


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{n} {what}" for what, n in counter.most_common())


def _ranges(offsets: list[int]) -> str:
    spans: list[list[int]] = []
    for offset in sorted(offsets):
        if spans and offset == spans[-1][1] + 1:
            spans[-1][1] = offset
        else:
            spans.append([offset, offset])
    return ",".join(f"{a}-{b}" if a != b else str(a) for a, b in spans)


def problems(lines: list[Line], bound: int) -> list[str]:
    """What the suite asserts: nothing lost, no second side effect at an idempotent receiver,
    repeats at email and Slack at most `bound` (what a sink process has in flight)."""
    out = []
    for ln in lines:
        if ln.lost:
            out.append(f"{ln.fault}: {ln.lost} of {ln.expected} not delivered at {ln.dest} "
                       f"within the deadline (the audit: {ln.audit})")  # fmt: skip
        if ln.disagree:
            out.append(f"{ln.fault}: the audit and the {ln.dest} receiver disagree on "
                       f"{ln.disagree} rows ({ln.audit})")  # fmt: skip
        if ln.second_effects:
            out.append(f"{ln.fault}: {ln.second_effects} second side effects at {ln.dest}")
        if ln.dest not in IDEMPOTENT and ln.repeated > bound:
            out.append(f"{ln.fault}: {ln.repeated} repeated at {ln.dest} (bound {bound})")
    return out
