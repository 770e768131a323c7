"""What became of a delivery, said once: the `Outcome` vocabulary and the records that carry it.

`Outcome` is every outcome a sink writes on `wedsync.delivery.results` (a subset of
`streams.models.Outcome`, which adds the in-app gateway's); nothing in the runtime spells
one as a string. `Outcomes` produces, for one attempt:

- `record`: its result on the ledger (folded into this process's ledger at once);
- `requeue`: the record's original bytes to `.retry` (due at a time, or parked for a paused
  integration) plus its result;
- `dead_letter` / `undecodable`: the original bytes to `.dlq` with the reasons in headers
  (plus a result, for a record that could be read);
- `health`: a health record when an integration is paused (its owner is told).

`apply(item, target, breaker, answer, latency_ms, credential_key)` turns a provider's answer
into those records (and the breaker, disable and pause decisions); it is called once per
answered attempt and returns True when the record is finished. Every record produced for a
consumed record is counted on its `Stored` (the commit waits for Kafka's acknowledgements);
a record Kafka can never take raises out of `produce`, and the runtime stops without
committing it.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import Any, Protocol

from streams import metrics
from streams.kafka.codec import AvroCodec
from streams.kafka.deadletter import dead_letter_headers as raw_dead_letter_headers
from streams.logic.retry import Breaker, RetryPolicy
from streams.topics import DELIVERY_RESULTS, SLA_HEALTH, DeliveryTopics, Destination

from connectors.sinks import envelope
from connectors.sinks.answer import Answer, Verdict
from connectors.sinks.envelope import Item
from connectors.sinks.runtime.offsets import Stored

log = logging.getLogger("connectors.sinks.runtime")


class Outcome(enum.StrEnum):
    DELIVERED = "delivered"
    RETRY_SCHEDULED = "retry_scheduled"
    DEAD_LETTERED = "dead_lettered"
    REJECTED = "rejected"
    SKIPPED_DUPLICATE = "skipped_duplicate"
    SKIPPED_STALE = "skipped_stale"
    PAUSED = "paused"


class Produce(Protocol):
    def __call__(self, topic: str, value: bytes, key: bytes | None, headers: Any = None,
                 stored: Stored | None = None) -> None: ...  # fmt: skip


class Ledger(Protocol):
    headers: list[tuple[str, bytes]]

    def apply(self, result: dict[str, Any]) -> None: ...

    def kept(self, result: dict[str, Any], *, replayed: bool) -> list[tuple[str, bytes]]: ...


class Pauses(Protocol):
    disabled: set[str]

    def pause(self, credential_key: str) -> bool: ...


class Outcomes:
    def __init__(
        self, kind: Destination, topics: DeliveryTopics, *, results: AvroCodec,
        health: AvroCodec, ledger: Ledger, produce: Produce, pauses: Pauses,
        policy: RetryPolicy, clock: Callable[[], float], rand: Callable[[], float],
    ) -> None:  # fmt: skip
        self.kind, self.topics = kind, topics
        self._results_codec, self._health_codec = results, health
        self._ledger, self._produce, self._pauses = ledger, produce, pauses
        self.policy, self.clock, self.rand = policy, clock, rand
        self.delivered = 0
        k = kind.value  # metric children, looked up once (labels() costs per call)
        self._stage = f"sink.{k}"
        self._counts = {o: metrics.SINK_RESULTS.labels(k, o.value) for o in Outcome}
        self._to_provider = metrics.SINK_COMMIT_TO_PROVIDER_SECONDS.labels(k)
        self._retries: dict[str, Any] = {}
        self._dead: dict[str, Any] = {}

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ---- an answer, as records -------------------------------------------------------------
    def apply(
        self, item: Item, target: str, breaker: Breaker, answer: Answer, latency_ms: float,
        credential_key: str | None,
    ) -> bool:  # fmt: skip
        verdict = answer.verdict
        fields: dict[str, Any] = {
            "status": answer.status, "latency_ms": latency_ms, "provider_id": answer.provider_id,
            "error_class": answer.error_class, "error_message": answer.message or None,
        }  # fmt: skip
        if verdict is Verdict.OK:
            breaker.success()
            self._pauses.disabled.discard(target)
            self.delivered += 1
            self.record(item, target, Outcome.DELIVERED, **fields)
            source_ms = int(item.record.get("source_ts_ms") or 0)
            if source_ms:
                self._to_provider.observe(max(0.0, self.clock() - source_ms / 1000))
            return True
        if verdict is Verdict.REAUTH:
            if credential_key is None:
                self.dead_letter(item, target, answer.error_class or "reauth",
                                 "the platform credential was refused; fix it, then replay",
                                 fields)  # fmt: skip
                return True
            if self._pauses.pause(credential_key):
                self.health(credential_key, item, "failing", ["credential_refused: reconnect"])
            self.requeue(item, target, item.attempt, self.now_ms(), answer.error_class,
                         paused=credential_key, outcome=Outcome.PAUSED, result=fields)  # fmt: skip
            return True
        if verdict is Verdict.DISABLE:
            self._pauses.disabled.add(target)
            log.warning("%s disabled: %s", target, answer.error_class)
            self.dead_letter(item, target, answer.error_class or "disabled",
                             answer.message or "the target is gone", fields)  # fmt: skip
            return True
        if verdict is Verdict.FATAL:
            self.dead_letter(item, target, answer.error_class or "fatal",
                             answer.message or "refused by the provider", fields)  # fmt: skip
            return True
        if verdict is Verdict.RETRY:
            breaker.failure(self.clock())
        if self.policy.exhausted(item.attempt):
            self.dead_letter(
                item, target, answer.error_class or verdict.value,
                f"gave up after {item.attempt + 1} attempts: {answer.message or verdict.value}",
                fields,
            )  # fmt: skip
            return True
        delay = self.policy.delay(item.attempt, answer.retry_after, self.rand)
        self.requeue(item, target, item.attempt + 1, self.now_ms() + int(delay * 1000),
                     answer.error_class, result=fields)  # fmt: skip
        return True

    # ---- the records -----------------------------------------------------------------------
    def record(self, item: Item, target: str, outcome: Outcome, **fields: Any) -> None:
        """The attempt's result on the ledger, folded into this process's ledger at once."""
        result = envelope.result(
            item, destination=self.kind, target=target, outcome=outcome.value,
            now_ms=self.now_ms(), **fields,
        )  # fmt: skip
        key = (result["integration_id"] or self.kind.value).encode()
        value = self._results_codec.encode(result)
        self._produce(DELIVERY_RESULTS.name, value, key, self._ledger.headers, item.stored)
        self._ledger.apply(result)
        for topic, kept in self._ledger.kept(result, replayed=item.replay_of is not None):
            self._produce(topic, value, kept, None, item.stored)  # the compacted ledger
        self._counts[outcome].inc()

    def requeue(
        self, item: Item, target: str, attempt: int, not_before_ms: int,
        error_class: str | None, *, paused: str | None = None,
        outcome: Outcome = Outcome.RETRY_SCHEDULED, result: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        """Send the record's original bytes to the retry topic as attempt `attempt`, due at
        `not_before_ms`, and record this attempt's outcome."""
        first = item.first_attempt_ms or self.now_ms()
        headers = envelope.retry_headers(
            item, attempt=attempt, not_before_ms=not_before_ms, first_attempt_ms=first,
            error_class=error_class, paused=paused,
        )  # fmt: skip
        self._produce(self.topics.retry.name, item.value, item.key, headers, item.stored)
        fields = dict(result or {})
        fields["error_class"] = fields.get("error_class") or error_class
        self.record(item, target, outcome, **fields)
        label = error_class or "-"
        counter = self._retries.get(label)
        if counter is None:
            counter = self._retries[label] = metrics.SINK_RETRIES.labels(self.kind.value, label)
        counter.inc()

    def dead_letter(
        self, item: Item, target: str, error_class: str, reason: str,
        result: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        now = self.now_ms()
        headers = envelope.dead_letter_headers(
            item, destination=self.kind, target=target, error_class=error_class,
            reason=reason, first_attempt_ms=item.first_attempt_ms or now, now_ms=now,
        )  # fmt: skip
        self._produce(self.topics.dlq.name, item.value, item.key, headers, item.stored)
        self._dead_letters(error_class)
        fields = dict(result or {})
        fields["error_class"] = error_class
        fields["error_message"] = fields.get("error_message") or reason
        self.record(item, target, Outcome.DEAD_LETTERED, **fields)

    def undecodable(self, topic: str, partition: int, offset: int, key: bytes | None,
                    value: bytes, error: Exception, stored: Stored) -> None:  # fmt: skip
        """A record that is not a delivery record: its bytes to `.dlq`, the reason in headers."""
        self._produce(
            self.topics.dlq.name, value, key,
            raw_dead_letter_headers(
                stage=self._stage, error=error, topic=topic, partition=partition,
                offset=offset, now_ms=self.now_ms(),
            ),
            stored,
        )  # fmt: skip
        self._dead_letters(type(error).__name__)

    def health(self, credential_key: str, item: Item, status: str, breaches: list[str]) -> None:
        now = self.now_ms()
        record = {
            "event_id": f"sink-health:{credential_key}:{now}",
            "integration_id": item.record.get("integration_id") or credential_key,
            "destination": self.kind.value, "window_start_ms": now, "window_end_ms": now,
            "requests": 1, "errors": 1, "error_rate": 1.0, "latency_p50_ms": 0.0,
            "latency_p95_ms": 0.0, "latency_p99_ms": 0.0, "availability": 0.0,
            "reliability_score": 0.0, "status": status, "breaches": breaches,
            "source_ts_ms": int(item.record.get("source_ts_ms") or 0), "computed_at_ms": now,
        }  # fmt: skip
        key = str(record["integration_id"]).encode()
        self._produce(SLA_HEALTH.name, self._health_codec.encode(record), key)

    def _dead_letters(self, error_class: str) -> None:
        counter = self._dead.get(error_class)
        if counter is None:
            counter = metrics.DEAD_LETTERS.labels(self._stage, error_class)
            self._dead[error_class] = counter
        counter.inc()
