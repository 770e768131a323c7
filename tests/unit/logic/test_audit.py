"""The reconciliation join (`wedsync audit`) on known inputs: every source change in a window
joined to its events, deliveries and outcomes, each missing link lost or pending."""

from __future__ import annotations

from typing import Any

import pytest
from streams import topics
from streams.dev.samples import change_event
from streams.logic.audit import (
    DeadLetter,
    Observed,
    Position,
    Status,
    expected_event_ids,
    expected_events,
    reconcile,
)

T0 = 1_800_000_000_000
CDC, EVENTS = topics.INGEST_CDC.name, topics.EVENTS.name
EMAIL = topics.DELIVER[topics.Destination.EMAIL]
INAPP = topics.DELIVER[topics.Destination.INAPP].deliver.name


def form_response(n: int, *, commit_ms: int = T0) -> dict[str, Any]:
    row = {"id": f"fr-{n}", "supplier_id": "sup-1", "couple_id": "c-1", "client_name": "A & B",
           "form_name": "Day", "question_count": 3}  # fmt: skip
    return dict(change_event("form_responses", "c", after=row, lsn=100 + n, commit_ms=commit_ms))


class Pipeline:
    """Builds an `Observed` the way the stages write it: positions, copies, commits."""

    def __init__(self) -> None:
        self.o = Observed()
        self.offsets: dict[str, int] = {}

    def _next(self, topic: str, partition: int = 0) -> Position:
        offset = self.offsets.get(topic, 0)
        self.offsets[topic] = offset + 1
        return Position(topic, partition, offset)

    def source(self, record: dict[str, Any]) -> Position:
        position = self._next(CDC)
        self.o.sources.append((position, record))
        return position

    def normalize(self, source: Position, record: dict[str, Any]) -> list[Position]:
        out = []
        for event in expected_events(source, record):
            position = self._next(EVENTS)
            self.o.events.append((position, dict(event)))
            out.append(position)
        return out

    def deliver(self, event_id: str, dest: str = "email", topic: str = EMAIL.deliver.name,
                delivery_id: str | None = None) -> Position:  # fmt: skip
        position = self._next(topic)
        record = {"event_id": event_id, "delivery_id": delivery_id or f"d-{event_id}-{dest}",
                  "to_address": "v@x.io"}  # fmt: skip
        self.o.deliveries.append((position, dest, record))
        return position

    def result(self, delivery_id: str, at: Position, outcome: str, attempt: int = 0) -> None:
        self.o.results.append({
            "delivery_id": delivery_id, "outcome": outcome, "attempt": attempt,
            "completed_at_ms": T0 + attempt, "source_topic": at.topic,
            "source_partition": at.partition, "source_offset": at.offset,
        })  # fmt: skip

    def commit(self, topic: str, offset: int, partition: int = 0) -> None:
        self.o.committed[(topic, partition)] = offset

    def commit_all(self) -> None:
        for topic, offset in self.offsets.items():
            self.commit(topic, offset)

    def audit(self, since: int = T0 - 1000, until: int = T0 + 1000) -> Any:
        return reconcile(self.o, since, until)


def event_ids(pipe: Pipeline) -> list[str]:
    return [e["event_id"] for _, e in pipe.o.events]


def fully_delivered(pipe: Pipeline, n: int = 1) -> Pipeline:
    record = form_response(n)
    pipe.normalize(pipe.source(record), record)
    for event_id in event_ids(pipe)[-2:]:
        at = pipe.deliver(event_id)
        pipe.result(f"d-{event_id}-email", at, "delivered")
    return pipe


def test_a_change_delivered_everywhere_has_no_finding() -> None:
    pipe = fully_delivered(Pipeline())
    pipe.commit_all()
    report = pipe.audit()
    assert report.findings == []
    assert [d.outcome for _, _, d in report.deliveries()] == ["delivered", "delivered"]


def test_a_form_response_expects_its_notice_and_its_customer_webhook_event() -> None:
    record = form_response(1)
    pipe = Pipeline()
    pipe.source(record)
    wanted = expected_event_ids(pipe.o, T0 - 1, T0 + 1)
    types = {e["event_type"] for e in expected_events(Position(CDC, 0, 0), record)}
    assert len(wanted) == 2 and types == {"form.response_received", "record.changed"}


def test_a_change_with_no_rule_is_a_counted_skip_not_a_loss() -> None:
    pipe = Pipeline()
    pipe.source(dict(change_event("wedding_vendors", "c", after={"id": "wv-1"}, lsn=5,
                                  commit_ms=T0)))  # fmt: skip
    pipe.commit_all()
    report = pipe.audit()
    assert report.findings == []
    assert report.changes[0].skipped == "no rule for wedding_vendors"


def test_an_event_missing_below_the_worker_commit_is_lost_at_normalize() -> None:
    pipe = Pipeline()
    pipe.source(form_response(1))
    pipe.commit(CDC, 1)
    report = pipe.audit()
    assert {(f.stage, f.status) for f in report.findings} == {("normalize", Status.LOST)}
    assert len(report.lost) == 2  # both of its events
    assert "below its group's committed offset 1" in report.lost[0].detail


def test_an_event_missing_above_the_worker_commit_is_pending() -> None:
    pipe = Pipeline()
    pipe.source(form_response(1))
    report = pipe.audit()
    assert report.lost == [] and len(report.pending) == 2


def test_a_change_its_stage_went_past_without_committing_is_pending_and_stuck() -> None:
    pipe = Pipeline()
    pipe.source(form_response(1))  # skipped: no event
    fully_delivered(pipe, 2)  # a later change of the same partition went through
    pipe.commit(CDC, 0)
    report = pipe.audit()
    stuck = [f for f in report.findings if f.source == "form_responses:fr-1"]
    assert {f.status for f in stuck} == {Status.PENDING}
    assert "has processed offset 1 of that partition: stuck behind it" in stuck[0].detail


def test_a_dead_lettered_change_is_accounted_for() -> None:
    pipe = Pipeline()
    at = pipe.source(form_response(1))
    pipe.o.dead_letters.append(DeadLetter(at, "normalize", "PoisonMessage", "bad"))
    pipe.commit_all()
    report = pipe.audit()
    assert report.findings == [] and report.changes[0].dead_lettered


def test_copies_of_one_change_are_one_change() -> None:
    pipe = Pipeline()
    record = form_response(1)
    pipe.source(record)  # the CDC source sent it again after a restart
    fully_delivered(pipe)
    pipe.commit_all()
    report = pipe.audit()
    assert len(report.changes) == 1 and report.findings == []


def test_an_event_never_routed_below_the_routing_commit_is_lost() -> None:
    pipe = Pipeline()
    record = form_response(1)
    pipe.normalize(pipe.source(record), record)
    pipe.commit_all()
    report = pipe.audit()
    assert {(f.stage, f.status) for f in report.findings} == {("route", Status.LOST)}


def test_an_event_not_yet_routed_is_pending() -> None:
    pipe = Pipeline()
    record = form_response(1)
    pipe.normalize(pipe.source(record), record)
    pipe.commit(CDC, 1)
    report = pipe.audit()
    assert {(f.stage, f.status) for f in report.findings} == {("route", Status.PENDING)}


def test_an_event_in_a_seen_marker_was_routed_to_no_one() -> None:
    pipe = Pipeline()
    record = form_response(1)
    pipe.normalize(pipe.source(record), record)
    pipe.o.seen.update(event_ids(pipe))
    pipe.commit_all()
    report = pipe.audit()
    assert report.findings == []
    assert {e.routing for e in report.changes[0].events} == {"to_no_one"}


def test_an_unrouted_event_older_than_the_seen_markers_is_unverified() -> None:
    pipe = Pipeline()
    record = form_response(1)
    pipe.normalize(pipe.source(record), record)
    pipe.o.seen_since_ms = T0 + 60_000
    pipe.commit_all()
    report = pipe.audit()
    assert {f.status for f in report.findings} == {Status.UNVERIFIED}
    assert report.lost == []


def test_a_routing_dead_letter_accounts_for_the_event() -> None:
    pipe = Pipeline()
    record = form_response(1)
    for at in pipe.normalize(pipe.source(record), record):
        pipe.o.dead_letters.append(DeadLetter(at, "route", "Unroutable", "unknown supplier"))
    pipe.commit_all()
    report = pipe.audit()
    assert report.findings == []
    assert {e.routing for e in report.changes[0].events} == {"dead_lettered"}


def test_a_delivery_committed_without_an_outcome_is_lost() -> None:
    pipe = Pipeline()
    record = form_response(1)
    pipe.normalize(pipe.source(record), record)
    for event_id in event_ids(pipe):
        pipe.deliver(event_id)
    pipe.commit_all()
    report = pipe.audit()
    assert {(f.stage, f.status, f.destination) for f in report.findings} == {
        ("deliver", Status.LOST, "email")
    }


def test_a_delivery_not_consumed_yet_is_pending() -> None:
    pipe = Pipeline()
    record = form_response(1)
    pipe.normalize(pipe.source(record), record)
    for event_id in event_ids(pipe):
        pipe.deliver(event_id)
    pipe.commit(CDC, 1)
    pipe.commit(EVENTS, 2)
    report = pipe.audit()
    assert report.lost == [] and {f.stage for f in report.pending} == {"deliver"}


def retried(pipe: Pipeline, *, copy: bool) -> None:
    record = form_response(1)
    pipe.normalize(pipe.source(record), record)
    first = event_ids(pipe)[0]
    pipe.o.seen.add(event_ids(pipe)[1])
    at = pipe.deliver(first)
    pipe.result(f"d-{first}-email", at, "retry_scheduled")
    if copy:
        pipe.deliver(first, topic=EMAIL.retry.name)


def test_a_retry_whose_copy_waits_on_the_retry_topic_is_pending() -> None:
    pipe = Pipeline()
    retried(pipe, copy=True)
    pipe.commit(CDC, 1)
    pipe.commit(EVENTS, 2)
    pipe.commit(EMAIL.deliver.name, 1)  # the retry copy is held, not committed
    report = pipe.audit()
    assert report.lost == [] and len(report.pending) == 1
    assert next(d for _, _, d in report.deliveries()).outcome == "retry_scheduled"


def test_a_retry_scheduled_with_no_retry_copy_after_the_commit_is_lost() -> None:
    pipe = Pipeline()
    retried(pipe, copy=False)
    pipe.commit_all()
    report = pipe.audit()
    assert [(f.stage, f.status) for f in report.findings] == [("deliver", Status.LOST)]
    assert "no later copy on the retry topic" in report.findings[0].detail


def test_a_retry_delivered_later_is_final() -> None:
    pipe = Pipeline()
    retried(pipe, copy=True)
    first = event_ids(pipe)[0]
    pipe.result(f"d-{first}-email", Position(EMAIL.retry.name, 0, 0), "delivered", attempt=1)
    pipe.commit_all()
    assert pipe.audit().findings == []


@pytest.mark.parametrize("outcome", ["skipped_duplicate", "skipped_stale", "dead_lettered"])
def test_skips_and_dead_letters_are_final_outcomes_shown_per_destination(outcome: str) -> None:
    pipe = Pipeline()
    record = form_response(1)
    pipe.normalize(pipe.source(record), record)
    pipe.o.seen.add(event_ids(pipe)[1])
    at = pipe.deliver(event_ids(pipe)[0])
    pipe.result(f"d-{event_ids(pipe)[0]}-email", at, outcome)
    pipe.commit_all()
    report = pipe.audit()
    assert report.findings == []
    assert f"deliver   email    1: 1 {outcome}" in report.summary()


def test_an_in_app_delivery_is_final_once_routed() -> None:
    pipe = Pipeline()
    record = form_response(1)
    pipe.normalize(pipe.source(record), record)
    for event_id in event_ids(pipe):
        pipe.deliver(event_id, dest="inapp", topic=INAPP)
    pipe.commit_all()
    assert pipe.audit().findings == []


def test_changes_outside_the_window_are_not_audited() -> None:
    pipe = Pipeline()
    pipe.source(form_response(1, commit_ms=T0 - 10_000))
    pipe.source(form_response(2, commit_ms=T0 + 10_000))
    pipe.commit_all()
    report = pipe.audit()
    assert report.changes == [] and report.findings == []


def test_a_finding_line_names_stage_change_and_ids() -> None:
    pipe = Pipeline()
    pipe.source(form_response(1))
    pipe.commit(CDC, 1)
    line = pipe.audit().lost[0].line()
    assert line.startswith("LOST       normalize form_responses:fr-1 (committed 2027-01-15T08:00")
    assert "event=" in line and "not on wedsync.events" in line
