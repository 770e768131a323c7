"""Property: whatever the provider does and whatever pushes are lost, once the feed has
fetched (a reconcile at the latest), the detector's busy set is the provider's truth and
every distinct overlap with a platform booking was reported exactly once."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from streams.logic.calendar import busy as busy_mod
from streams.logic.calendar.detect import EXTERNAL_PREFIX, apply_busy
from streams.logic.calendar.differ import Known, diff
from streams.logic.calendar.echo import OwnedIndex
from streams.logic.calendar.rounds import FetchRound, Observed, ResourceChange
from streams.logic.conflicts import (
    VendorBookings,
    apply_booking,
    conflict_id,
    find_conflicts,
    is_external,
)
from streams.models import DomainEvent

from tests.unit.calendar.feed.helpers import CAL, HORIZON, T0, busy, platform

RESOURCES = [f"e{i}" for i in range(5)]
BOOKINGS = [platform("b1", 10, 14), platform("b2", 30, 34, client="c-2")]

hours = st.integers(min_value=0, max_value=48)
classes = st.sampled_from(["busy", "busy", "tentative", "free"])


@st.composite
def shape(draw: st.DrawFn) -> tuple[Observed, ...]:
    """A single event, or a recurring series (daily, 1-3 occurrences, some skipped)."""
    start = draw(hours)
    length = draw(st.integers(min_value=1, max_value=6))
    cls = draw(classes)
    count = draw(st.integers(min_value=1, max_value=3))
    skipped = draw(st.sets(st.integers(min_value=0, max_value=count - 1), max_size=count - 1))
    return tuple(
        busy(start + 24 * n, start + 24 * n + length, cls=cls, instance=str(n) if count > 1 else "")
        for n in range(count)
        if n not in skipped
    )


op = st.one_of(
    st.tuples(st.just("put"), st.sampled_from(RESOURCES), shape()),  # create, move, recurrence edit
    st.tuples(st.just("delete"), st.sampled_from(RESOURCES), st.none()),
    st.tuples(st.just("fetch"), st.none(), st.none()),
    st.tuples(st.just("invalidate"), st.none(), st.none()),
    st.tuples(st.just("drop"), st.none(), st.none()),  # the next change's push is lost
)


class Feed:
    def __init__(self) -> None:
        self.truth: dict[str, tuple[Observed, ...]] = {}
        self.changed: list[str] = []  # resources changed since the cursor
        self.full = True  # the first round is a full sync
        self.known = Known()
        self.version = 0
        self.state: VendorBookings = {}
        self.alerts: list[DomainEvent] = []
        for b in BOOKINGS:
            self.state, found = apply_booking(self.state, b, supplier_id=CAL.supplier_id, now_ms=T0)
            self.alerts += found

    def fetch(self) -> None:
        if self.full:
            changes = tuple(ResourceChange(r, i) for r, i in self.truth.items())
        else:
            changes = tuple(
                ResourceChange(r, self.truth.get(r)) for r in dict.fromkeys(self.changed)
            )
        self.version += 1
        round_ = FetchRound(CAL, changes, cursor=str(self.version), full=self.full)
        out = diff(
            self.known, round_, OwnedIndex(), version=self.version, now_ms=T0, horizon=HORIZON
        )
        for record in out.records:
            self.state, found = apply_busy(
                self.state, record, supplier_id=CAL.supplier_id, now_ms=T0
            )
            self.alerts += found
        self.known, self.changed, self.full = out.known, [], False


@settings(max_examples=300, deadline=None)
@given(st.lists(op, max_size=30))
def test_busy_set_is_the_truth_and_each_overlap_alerts_once(
    ops: list[tuple[str, str | None, tuple[Observed, ...] | None]],
) -> None:
    feed = Feed()
    drop_next = False
    for kind, resource, value in ops:
        if kind == "put" and resource is not None and value is not None:
            feed.truth[resource] = value
            feed.changed.append(resource)  # a lost push still leaves the change for the next fetch
            if not drop_next:
                feed.fetch()
            drop_next = False
        elif kind == "delete" and resource is not None and resource in feed.truth:
            del feed.truth[resource]
            feed.changed.append(resource)
            if not drop_next:
                feed.fetch()
            drop_next = False
        elif kind == "fetch":
            feed.fetch()
        elif kind == "invalidate":
            feed.full = True
        elif kind == "drop":
            drop_next = True
    feed.fetch()  # the reconcile

    truth = {
        (busy_mod.interval_id(CAL, r, o.instance), o.start_ms, o.end_ms, o.busy)
        for r, instances in feed.truth.items()
        for o in instances
        if busy_mod.counts(o) and HORIZON.holds(o)
    }
    stored = {
        (k.removeprefix(EXTERNAL_PREFIX), b["start_ms"], b["end_ms"], b.get("busy"))
        for k, b in feed.state.items()
        if is_external(b)
    }
    assert stored == truth

    conflicts = [
        a
        for a in feed.alerts
        if a["event_type"] in {"booking.conflict_detected", "booking.conflict_possible"}
    ]
    ids = [a["event_id"] for a in conflicts]
    assert len(ids) == len(set(ids)), "an overlap was reported twice"
    standing = {
        conflict_id(CAL.supplier_id, b, other)
        for b in feed.state.values()
        if not is_external(b)
        for other in find_conflicts(feed.state, b)
        if is_external(other)
    }
    assert standing <= set(ids), "a standing overlap was never reported"
