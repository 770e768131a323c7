"""Which WAL position may be confirmed to PostgreSQL: pure bookkeeping, no I/O.

PostgreSQL forgets WAL up to the position we confirm (`send_feedback(flush_lsn=...)`), so a
position is confirmable only when every event of every transaction that ends at or before it
was acknowledged by Kafka. Transactions arrive from the slot in commit order; each one is
opened at Begin, counts its produced events, and gets its end LSN at Commit. Kafka may
acknowledge events of different partitions out of order, so a transaction is released only
when it and every earlier one are committed and fully acknowledged.

Delivery callbacks and the replication loop run on the same thread (callbacks fire inside
`Producer.poll`/`flush`), so there is no locking.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass
class TxAcks:
    """One source transaction in flight."""

    pending: int = 0
    end_lsn: int | None = None  # set at Commit


class AckTracker:
    def __init__(self, confirmed_lsn: int = 0) -> None:
        self._txs: deque[TxAcks] = deque()
        self.confirmable_lsn = confirmed_lsn
        self.failure: str | None = None

    def begin(self) -> TxAcks:
        """A transaction started (Begin); its events are counted on the returned handle."""
        tx = TxAcks()
        self._txs.append(tx)
        return tx

    def sent(self, tx: TxAcks) -> None:
        """One event of `tx` was handed to the producer."""
        tx.pending += 1

    def acked(self, tx: TxAcks, error: str | None = None) -> None:
        """Kafka answered for one event of `tx`. An error poisons the tracker: nothing after
        this point is ever confirmed, and the source must stop and resume from the slot."""
        if error is not None:
            self.failure = self.failure or error
            return
        tx.pending -= 1

    def fail(self, error: str) -> None:
        """The producer cannot go on (a fatal error, a refused record): poisons the tracker
        as a failed acknowledgement does."""
        self.failure = self.failure or error

    def commit(self, tx: TxAcks, end_lsn: int) -> None:
        """`tx` ended (Commit); confirming `end_lsn` acknowledges the whole transaction."""
        tx.end_lsn = end_lsn

    def advance(self) -> int:
        """Release every leading transaction that is committed and fully acknowledged;
        return the highest LSN that may be confirmed now."""
        if self.failure is not None:
            return self.confirmable_lsn
        while self._txs:
            tx = self._txs[0]
            if tx.end_lsn is None or tx.pending > 0:
                break
            self._txs.popleft()
            self.confirmable_lsn = max(self.confirmable_lsn, tx.end_lsn)
        return self.confirmable_lsn

    @property
    def idle(self) -> bool:
        """True when nothing is in flight: every transaction seen is released."""
        return not self._txs and self.failure is None

    def in_flight(self) -> int:
        return sum(tx.pending for tx in self._txs)
