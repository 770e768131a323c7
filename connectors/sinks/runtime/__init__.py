"""The one sink loop: consume -> decide -> deliver -> record -> commit / retry / dead-letter.

`SinkRuntime(connector, ...)` runs one destination kind. It reads `wedsync.deliver.<kind>`
and `wedsync.deliver.<kind>.retry` in the consumer group `wedsync-sink-<kind>` (more
processes share the partitions) and, for each record:

1. asks the ledger (`streams.logic.ledger`): already processed (a lost commit), already
   delivered (a copy), or stale (a newer version reached this target) -> record and skip;
2. holds a retry until it is due, parks it while its integration is paused, dead-letters it
   at once when its target was disabled, reschedules it while the target's breaker is open
   or its rate limit would make it wait longer than `max_rate_wait_s`;
3. delivers it (concurrently: `concurrency` per process, `Limits` per rate-limit key, in
   order per target and aggregate), translating exceptions once into an `Answer`; a REAUTH
   answer gets exactly one more call with a refreshed credential, a second one pauses the
   integration (`Connector.credential_key`) and tells its owner with a health record;
4. records the attempt on `wedsync.delivery.results`, and sends the record on to `.retry`
   (exponential, jittered, Retry-After honoured) or `.dlq` (original bytes, reasons in
   headers);
5. commits a partition only up to its lowest record whose outcome records (result, retry,
   dead letter) Kafka has not yet acknowledged: at-least-once, and the loop never stops
   reading to wait for a flush.

A crash between a provider's answer and its ledger record re-sends that record after a
restart: idempotent providers (event ids, transactionId, If-None-Match, webhook-id) absorb
it; for Slack, SMTP and SMS the duplicates are bounded by the records in flight.

Stopping (`stop` set: SIGTERM, Ctrl-C) repeats nothing the provider accepted: no record is
started any more, and those not yet at their provider (waiting for their turn, a rate-limit
token or a slot) are dropped untouched; the calls already at a provider get up to
`drain_timeout_s` (default: the call timeout plus 5 s, so each ends by its own timeout first)
to finish; every outcome is recorded and acknowledged by Kafka, then what is finished is
committed. The records left uncommitted (not started, held retries, parked records) are read
again by the next owner; none was sent. Only a call still running at the drain bound is
cancelled: that delivery alone may be sent again.

Broker trouble: a fatal error of the idempotent producer does not stop the sink: nothing is
committed past an unacknowledged outcome record, a fresh producer produces those again
(`connectors.producer.OutcomeProducer`, at most 3 times in 10 minutes, then it stops saying
what to do). Unless Kafka lost data: when the group's committed offsets are gone or went
back below what Kafka confirmed to this process (a broker that restarted empty, topics
recreated), the ledger this process holds describes records that no longer exist (it would
skip new records as already processed), so it stops with a message saying what happened and
that a restart reloads the ledger from what Kafka holds now (once: a fresh process has
nothing to compare). Its unacknowledged outcome records are dropped, not written to the new
log (they could name offsets of the lost one), so what it delivered from the new log before
noticing (its fetches go on until the group drops it) may be delivered again by the next
process. No exception escapes a librdkafka callback.

The package, one job a module:

    loop.py      SinkRuntime: polling, admitting, starting each delivery, the stop
    admit.py     hold / park / disable / breaker / rate limit / turn per target and aggregate
    ledger.py    the ledger's decision (deliver, skip as duplicate or stale) and its fold
    attempt.py   the call: deadline, audit scope, exceptions as answers, the reauth retry
    outcomes.py  the Outcome vocabulary; result, retry, dead-letter and health records
    offsets.py   commit tracking (OffsetTracker, Stored), commits, the data-loss check
    group.py     the edge with Kafka: acknowledgements, producer recovery, rebalances
"""

from __future__ import annotations

from connectors.sinks.runtime.attempt import NotStarted, translate
from connectors.sinks.runtime.loop import SinkRuntime
from connectors.sinks.runtime.outcomes import Outcome

__all__ = ["NotStarted", "Outcome", "SinkRuntime", "translate"]
