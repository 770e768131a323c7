"""The sink runtime's paths on a real broker, one behaviour per test. One broker and one
running sink serve the module; every test uses its own delivery ids, channels (targets) and
integrations, so the tests cannot see each other's records."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from connectors.sinks import envelope
from connectors.sinks.answer import backpressure, disable, fatal, reauth, retry
from connectors.sinks.base import Limits
from connectors.sinks.dlq import DlqFilter, read_dead_letters, replay
from streams.kafka.codec import TopicCodecs
from streams.kafka.deadletter import H_ERROR_CLASS, H_OFFSET, H_PARTITION, H_TOPIC
from streams.topics import SLA_HEALTH, Destination

from tests.integration.sinks.support import (
    SLACK,
    RunningSink,
    ScriptedConnector,
    dead_letters,
    make_runtime,
    outcomes,
    own_broker,
    produce,
    produce_raw,
    read_all,
    results,
    slack_record,
    wait_until,
)

pytestmark = pytest.mark.integration


@dataclass
class Rig:
    bootstrap: str
    codecs: TopicCodecs
    connector: ScriptedConnector

    def send(self, *records: dict) -> None:
        produce(self.bootstrap, self.codecs, list(records))

    def outcomes(self, delivery_id: str) -> list[str]:
        return outcomes(self.bootstrap, self.codecs, delivery_id)

    def wait_outcome(self, delivery_id: str, outcome: str, timeout: float = 30) -> list[str]:
        return wait_until(lambda: outcome in (o := self.outcomes(delivery_id)) and o, timeout)


@pytest.fixture(scope="module")
def rig(codecs: TopicCodecs) -> Iterator[Rig]:
    with own_broker() as bootstrap:
        connector = ScriptedConnector()
        sink = RunningSink(make_runtime(connector, bootstrap, codecs))
        yield Rig(bootstrap, codecs, connector)
        sink.stop()


def channel() -> str:
    return f"C{uuid.uuid4().hex[:8].upper()}"


def test_a_retryable_answer_is_retried_after_the_schedule_until_delivered(rig: Rig) -> None:
    record = slack_record(channel=channel())
    rig.connector.script[record["delivery_id"]] = [retry("http.503"), retry("http.503")]
    rig.send(record)
    assert rig.wait_outcome(record["delivery_id"], "delivered") == [
        "retry_scheduled", "retry_scheduled", "delivered",
    ]  # fmt: skip
    calls = rig.connector.attempts_of(record["delivery_id"])
    assert [c.attempt for c in calls] == [0, 1, 2]
    assert calls[1].at - calls[0].at >= 0.2
    assert calls[2].at - calls[1].at >= 0.4


def test_the_last_failed_attempt_dead_letters_the_original_bytes_with_the_story(
    rig: Rig,
) -> None:
    record = slack_record(channel=channel())
    rig.connector.script[record["delivery_id"]] = [retry("http.503")] * 3
    rig.send(record)
    rig.wait_outcome(record["delivery_id"], "dead_lettered")
    letters = [
        (v, h) for v, h in dead_letters(rig.bootstrap)
        if h.get(envelope.H_DELIVERY_ID) == record["delivery_id"]
    ]  # fmt: skip
    assert len(letters) == 1
    value, headers = letters[0]
    assert rig.codecs[SLACK.deliver].decode(value) == record  # untouched, attempt still 0
    assert headers[H_ERROR_CLASS] == "http.503"
    assert headers[envelope.H_ATTEMPTS] == "3"
    assert headers[H_TOPIC] == SLACK.deliver.name
    assert int(headers[H_PARTITION]) >= 0 and int(headers[H_OFFSET]) >= 0
    first, last = int(headers[envelope.H_FIRST_ATTEMPT]), int(headers[envelope.H_LAST_ATTEMPT])
    assert last - first >= 600  # 0.2 s + 0.4 s of backoff between them


def test_retry_after_is_honoured_over_a_shorter_schedule(rig: Rig) -> None:
    record = slack_record(channel=channel())
    rig.connector.script[record["delivery_id"]] = [backpressure("slack.ratelimited", 1.5)]
    rig.send(record)
    rig.wait_outcome(record["delivery_id"], "delivered")
    first, second = rig.connector.attempts_of(record["delivery_id"])
    assert second.at - first.at >= 1.5


def test_a_fatal_answer_dead_letters_at_once(rig: Rig) -> None:
    record = slack_record(channel=channel())
    rig.connector.script[record["delivery_id"]] = [fatal("slack.channel_not_found")]
    rig.send(record)
    assert rig.wait_outcome(record["delivery_id"], "dead_lettered") == ["dead_lettered"]
    assert len(rig.connector.attempts_of(record["delivery_id"])) == 1


def test_a_disabled_target_gets_nothing_more_until_a_replay_succeeds(rig: Rig) -> None:
    target = channel()
    gone, later = slack_record(channel=target), slack_record(1, channel=target)
    rig.connector.script[gone["delivery_id"]] = [disable("slack.channel_is_archived")]
    rig.send(gone)
    rig.wait_outcome(gone["delivery_id"], "dead_lettered")
    rig.send(later)
    rig.wait_outcome(later["delivery_id"], "dead_lettered")
    assert rig.connector.attempts_of(later["delivery_id"]) == []
    letters = read_dead_letters(rig.bootstrap, Destination.SLACK, rig.codecs[SLACK.deliver])
    mine = [d for d in letters if DlqFilter(target=f"slack:{target}").matches(d)]
    assert [d.error_class for d in mine] == ["slack.channel_is_archived", "target_disabled"]
    replay(rig.bootstrap, Destination.SLACK, mine[1:], dry_run=False)
    rig.wait_outcome(later["delivery_id"], "delivered")


def test_consecutive_failures_open_the_breaker_and_calls_wait_for_the_probe(rig: Rig) -> None:
    target = channel()
    failing = [slack_record(n, channel=target, aggregate_id=f"a{n}") for n in range(3)]
    for record in failing:  # three consecutive failures (the threshold), then they recover
        rig.connector.script[record["delivery_id"]] = [retry("http.503")]
    rig.send(*failing)
    wait_until(lambda: all(rig.connector.attempts_of(r["delivery_id"]) for r in failing))
    blocked = slack_record(9, channel=target)
    rig.send(blocked)
    rig.wait_outcome(blocked["delivery_id"], "delivered")
    assert "breaker_open" in [
        r["error_class"] for r in results(rig.bootstrap, rig.codecs)
        if r["delivery_id"] == blocked["delivery_id"]
    ]  # fmt: skip
    opened = max(rig.connector.attempts_of(r["delivery_id"])[0].at for r in failing)
    assert rig.connector.attempts_of(blocked["delivery_id"])[0].at - opened >= 0.9


def test_a_rate_limit_spaces_calls_to_one_target(rig: Rig) -> None:
    target = channel()
    rig.connector.limits[target] = Limits(rate_per_s=4.0, burst=1)
    records = [slack_record(n, channel=target, aggregate_id=f"r{n}") for n in range(6)]
    rig.send(*records)
    wait_until(lambda: all("delivered" in rig.outcomes(r["delivery_id"]) for r in records))
    times = sorted(rig.connector.attempts_of(r["delivery_id"])[0].at for r in records)
    assert times[-1] - times[0] >= 5 * 0.25 - 0.05


def test_an_older_version_after_a_newer_one_to_the_same_target_is_not_sent(rig: Rig) -> None:
    target = channel()
    newer = slack_record(channel=target, aggregate_id="w-stale", aggregate_version=200)
    older = slack_record(1, channel=target, aggregate_id="w-stale", aggregate_version=100)
    rig.send(newer)
    rig.wait_outcome(newer["delivery_id"], "delivered")
    rig.send(older)
    assert rig.wait_outcome(older["delivery_id"], "skipped_stale") == ["skipped_stale"]
    assert rig.connector.attempts_of(older["delivery_id"]) == []


def test_a_second_copy_of_a_delivered_record_is_not_sent_again(rig: Rig) -> None:
    record = slack_record(channel=channel())
    rig.send(record)
    rig.wait_outcome(record["delivery_id"], "delivered")
    rig.send(record)
    assert rig.wait_outcome(record["delivery_id"], "skipped_duplicate") == [
        "delivered", "skipped_duplicate",
    ]  # fmt: skip
    assert len(rig.connector.attempts_of(record["delivery_id"])) == 1


def test_a_refused_credential_is_refreshed_once_then_delivered(rig: Rig) -> None:
    record = slack_record(channel=channel(), integration_id=uuid.uuid4().hex)
    rig.connector.script[record["delivery_id"]] = [reauth("slack.invalid_auth")]
    rig.send(record)
    assert rig.wait_outcome(record["delivery_id"], "delivered") == ["delivered"]
    assert [c.refresh for c in rig.connector.attempts_of(record["delivery_id"])] == [False, True]


def test_a_paused_integration_waits_while_others_flow_then_resumes_in_order(rig: Rig) -> None:
    paused_id, other_id = uuid.uuid4().hex, uuid.uuid4().hex
    key = f"integration:{paused_id}"
    rig.connector.reauth_until_reconnected.add(key)
    target = channel()
    waiting = [
        slack_record(n, channel=target, integration_id=paused_id, aggregate_id="w-pause",
                     aggregate_version=100 + n)
        for n in range(3)
    ]  # fmt: skip
    flowing = slack_record(7, channel=channel(), integration_id=other_id)
    rig.send(*waiting)
    rig.wait_outcome(waiting[0]["delivery_id"], "paused")
    rig.send(flowing)
    rig.wait_outcome(flowing["delivery_id"], "delivered")
    health = [rig.codecs[SLA_HEALTH].decode(m.value()) for m in read_all(rig.bootstrap, SLA_HEALTH)]
    assert [h["status"] for h in health if h["integration_id"] == paused_id][:1] == ["failing"]
    assert all(not rig.connector.side_effects[r["delivery_id"]] for r in waiting)
    rig.connector.reauth_until_reconnected.discard(key)  # the owner reconnected
    wait_until(lambda: all("delivered" in rig.outcomes(r["delivery_id"]) for r in waiting))
    delivered_at = [
        next(c.at for c in reversed(rig.connector.attempts_of(r["delivery_id"]))) for r in waiting
    ]
    assert delivered_at == sorted(delivered_at)


def test_bytes_that_are_not_a_delivery_record_are_dead_lettered_and_the_sink_goes_on(
    rig: Rig,
) -> None:
    garbage = b"\x00\x00\x00\x00\x07not avro at all" + uuid.uuid4().bytes
    produce_raw(rig.bootstrap, SLACK.deliver.name, garbage)
    wait_until(lambda: any(v == garbage for v, _ in dead_letters(rig.bootstrap)))
    after = slack_record(channel=channel())
    rig.send(after)
    rig.wait_outcome(after["delivery_id"], "delivered")


def test_replay_dry_run_prints_without_sending(rig: Rig) -> None:
    record = slack_record(channel=channel())
    rig.connector.script[record["delivery_id"]] = [fatal("slack.msg_too_long")]
    rig.send(record)
    rig.wait_outcome(record["delivery_id"], "dead_lettered")
    letters = read_dead_letters(rig.bootstrap, Destination.SLACK, rig.codecs[SLACK.deliver])
    mine = [d for d in letters if DlqFilter(event_id=record["event_id"]).matches(d)]
    assert len(replay(rig.bootstrap, Destination.SLACK, mine, dry_run=True)) == 1
    letters_after = read_dead_letters(rig.bootstrap, Destination.SLACK, rig.codecs[SLACK.deliver])
    assert len(letters_after) == len(letters)
    assert rig.outcomes(record["delivery_id"]) == ["dead_lettered"]
