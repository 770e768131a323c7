"""The delivery ledger as a sink process sees it: `streams.logic.ledger.LedgerState` loaded
from `wedsync.delivery.results` at start and kept current by tailing it.

Results this process writes are folded at once (`LedgerState.apply` by the runtime); tailing
adds what other processes of the same destination wrote (after a rebalance, the partitions
they had). `catch_up()` runs when partitions are assigned, before their records are read.

Kafka not answering yet (a broker starting, leaders being elected after a restart or after
the topics were created) is waited out: `load` tries again until its timeout, `catch_up`
gives up quietly after its own (it runs inside a rebalance callback, which must not raise).
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from streams.errors import BrokerUnavailable, DecodeError
from streams.kafka.codec import AvroCodec
from streams.kafka.connection import Kafka, client_config
from streams.kafka.recovering import watermarks
from streams.kafka.replay import read_to_end
from streams.logic.ledger import LedgerState
from streams.topics import DELIVERY_RESULTS

log = logging.getLogger(__name__)

WRITER = "wedsync.sink.writer"  # header: which sink process wrote a result


class LedgerReader:
    def __init__(
        self, bootstrap: Kafka, group_id: str, codec: AvroCodec, state: LedgerState,
        writer: bytes = b"",
    ) -> None:  # fmt: skip
        """`writer`: the id this process stamps on its own results (already folded)."""
        self.state = state
        self._writer = writer
        self._codec = codec
        self._consumer = Consumer(client_config(bootstrap, {
            "group.id": f"{group_id}-ledger",
            "enable.auto.commit": False, "fetch.wait.max.ms": 250,
            "log.connection.close": False,
        }))  # fmt: skip
        self._parts = [(DELIVERY_RESULTS.name, p) for p in range(DELIVERY_RESULTS.partitions)]

    def _apply(self, msg: Message) -> None:
        try:
            self.state.apply(self._codec.decode(msg.value()))
        except DecodeError as exc:  # not ours to dead-letter: the results' writer is a sink
            log.warning(
                "unreadable delivery result at %s:%s: %s", msg.partition(), msg.offset(), exc
            )

    def load(self, timeout: float = 60.0) -> None:
        """Read every result there is now; the consumer then stays positioned to tail.
        BrokerUnavailable when Kafka cannot say where the results end within `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                missing = read_to_end(self._consumer, self._parts, self._apply,
                                      timeout=max(1.0, deadline - time.monotonic()))  # fmt: skip
                break
            except BrokerUnavailable as exc:  # e.g. no partition leader yet
                if time.monotonic() >= deadline:
                    raise
                log.info("ledger: %s; trying again", exc)
                time.sleep(0.5)
        if missing:
            log.warning("ledger not read to its end in %.0f s: %s", timeout, sorted(missing))

    def poll(self, max_records: int = 10_000) -> int:
        """Fold results that arrived since; never waits."""
        msgs = self._consumer.consume(max_records, 0)
        for msg in msgs:
            if not msg.error() and (WRITER, self._writer) not in (msg.headers() or ()):
                self._apply(msg)
        return len(msgs)

    def catch_up(self, timeout: float = 10.0) -> None:
        """Fold results up to the current end of every partition (before reading newly
        assigned delivery partitions, so another process's outcomes are known). Never raises:
        when Kafka cannot say where they end, it logs that and reads on while tailing."""
        try:
            ends = {
                p: watermarks(self._consumer, TopicPartition(t, p), seconds=10)[1]
                for t, p in self._parts
            }
        except KafkaException as exc:
            log.warning("ledger not caught up (end offsets unknown: %s)", exc.args[0].str())
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            positions = self._consumer.position([TopicPartition(t, p) for t, p in self._parts])
            if all(tp.offset >= ends[tp.partition] or (tp.offset < 0 and ends[tp.partition] == 0)
                   for tp in positions):  # fmt: skip
                return
            self.poll()
            time.sleep(0.01)

    def close(self) -> None:
        self._consumer.close()
