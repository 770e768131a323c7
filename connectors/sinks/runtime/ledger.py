"""The runtime's dealings with the delivery ledger (`wedsync.delivery.results`).

`Ledger` holds this process's `LedgerState` (the fold, `streams.logic.ledger`) and its writer
id (stamped on every result it produces, so its reader does not fold them twice), and makes
the `LedgerReader` that loads the ledger at start and tails it (`reader()`, once per run).

`skip(item, target)` is asked first for every consumed record: None means deliver it;
otherwise the outcome to record instead (`SKIPPED_DUPLICATE`, `SKIPPED_STALE` with the newer
delivery's id) or, for a record whose outcome is already on the ledger at its own position (a
commit lost after it was recorded), nothing to record at all. `apply` folds a result this
process produced, at once; `kept` names where the compacted per-kind ledger
(`wedsync.delivery.ledger.<kind>`) keeps it, so start-up reads a bounded amount
(`connectors.sinks.ledger_reader`).
"""

from __future__ import annotations

import uuid
from typing import Any

from streams.kafka.codec import AvroCodec
from streams.kafka.connection import Kafka
from streams.logic.ledger import LedgerState

from connectors.sinks.envelope import Item
from connectors.sinks.ledger_reader import WRITER, LedgerReader
from connectors.sinks.runtime.outcomes import Outcome
from connectors.sinks.settings import SinkSettings

Skip = tuple[Outcome | None, str | None]  # (outcome to record or None, superseded_by)
ALREADY_PROCESSED: Skip = (None, None)


class Ledger:
    def __init__(
        self, kind: str, bootstrap: Kafka, group_id: str, codec: AvroCodec, *,
        copy_window_s: float | None = None, skew_s: float | None = None,
    ) -> None:  # fmt: skip
        """`copy_window_s`, `skew_s`: the bounded start's (`SinkSettings`; None: its default)."""
        defaults = SinkSettings.model_construct()
        copy_window_s = defaults.ledger_copy_window_s if copy_window_s is None else copy_window_s
        skew_s = defaults.ledger_clock_skew_s if skew_s is None else skew_s
        self.state = LedgerState(kind)
        self._window = {"copy_window_s": copy_window_s, "skew_s": skew_s}
        self._reader: LedgerReader | None = None
        self.writer = uuid.uuid4().hex.encode()
        self.headers = [(WRITER, self.writer)]  # on every result this process writes
        self._bootstrap, self._group_id, self._codec = bootstrap, group_id, codec

    def reader(self) -> LedgerReader:
        """A reader that folds the ledger into `state` (`load`, then `poll`/`catch_up`)."""
        self._reader = LedgerReader(self._bootstrap, self._group_id, self._codec, self.state,
                                    self.writer, **self._window)  # fmt: skip
        return self._reader

    def kept(self, result: dict[str, Any], *, replayed: bool) -> list[tuple[str, bytes]]:
        """(topic, key) pairs the compacted per-kind ledger keeps `result` under (none
        before the reader exists: nothing is delivered before it loaded)."""
        if self._reader is None:
            return []
        return self._reader.kept(result, replayed=replayed)

    def skip(self, item: Item, target: str) -> Skip | None:
        """None: deliver `item`; else what to record instead (see the module docstring)."""
        decision = self.state.decide(item.record, target, item.source)
        if decision == "deliver":
            return None
        if decision == "processed":
            return ALREADY_PROCESSED
        if decision == "delivered":
            return (Outcome.SKIPPED_DUPLICATE, None)
        return (Outcome.SKIPPED_STALE, self.state.superseded_by(item.record, target))

    def apply(self, result: dict[str, Any]) -> None:
        self.state.apply(result)
