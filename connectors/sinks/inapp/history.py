"""What the gateway remembers of each user's stream: positions, resume and read state. Pure.

A user's notifications live on one partition of `wedsync.deliver.inapp` (keyed by user), so a
position is (epoch, offset) where the epoch names the log (`<topic incarnation>:<partition>`).
The gateway reads every partition from `window_start` on (the last `history_records` records,
no older than `history_max_age_s`) and keeps each user's last `history_per_user` of them. It can
therefore replay everything after a client's position exactly when:
  - the epoch is this log's (same topic incarnation, same partition), and
  - nothing after the position was dropped: the position is at or after the partition's window
    start minus one, and the user's own list dropped nothing after it, and
  - the position is not past the log's end (a log that was reset reuses offsets).
Otherwise `resume` says `recovered=False` and returns what it has (the client reloads).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

EARLY_RECEIPTS = 100_000  # receipts kept for notifications not read yet


@dataclass
class Entry:
    partition: int
    offset: int
    user: str
    record: dict[str, Any]  # the in-app delivery record as decoded
    at_s: float  # when the record was written (Kafka timestamp), for the age bound
    seen: bool = False
    read: bool = False

    @property
    def id(self) -> str:
        return str(self.record["delivery_id"])


@dataclass(frozen=True)
class Resume:
    recovered: bool | None  # None: no position was given
    entries: list[Entry]
    after: dict[int, int]  # partition -> the client's offset: at or below, never sent again


@dataclass
class _Partition:
    window_start: int = 0  # every record from here on is known (or was dropped per user)
    head: int = 0  # next offset expected (one past the last record read)
    fifo: deque[Entry] = field(default_factory=deque)


class History:
    def __init__(
        self, incarnation: str, *, per_partition: int, per_user: int, max_age_s: float
    ) -> None:
        self.incarnation = incarnation
        self.per_partition = per_partition
        self.per_user = per_user
        self.max_age_s = max_age_s
        self._parts: dict[int, _Partition] = {}
        self._users: dict[str, deque[Entry]] = {}
        self._by_id: dict[str, dict[str, Entry]] = {}
        self._dropped_after: dict[tuple[str, int], int] = {}  # (user, partition) -> offset
        # receipts read before their notification (the topics are read side by side at start)
        self._early: OrderedDict[tuple[str, str], str] = OrderedDict()

    def epoch(self, partition: int) -> str:
        return f"{self.incarnation}:{partition}"

    def start(self, partition: int, window_start: int, log_end: int) -> None:
        """Reading of `partition` begins at `window_start`; the log currently ends at
        `log_end` (its high watermark)."""
        self._parts[partition] = _Partition(window_start, max(window_start, log_end))

    def head(self, partition: int) -> int:
        part = self._parts.get(partition)
        return part.head if part else 0

    def note_end(self, partition: int, log_end: int) -> None:
        """The broker says the log reaches `log_end` (fetch watermark)."""
        part = self._parts.setdefault(partition, _Partition())
        part.head = max(part.head, log_end)

    def add(self, entry: Entry, now_s: float) -> None:
        part = self._parts.setdefault(entry.partition, _Partition(entry.offset, entry.offset))
        part.head = max(part.head, entry.offset + 1)
        part.fifo.append(entry)
        mine = self._users.setdefault(entry.user, deque())
        mine.append(entry)
        self._by_id.setdefault(entry.user, {})[entry.id] = entry
        early = self._early.pop((entry.user, entry.id), None)
        if early is not None:
            self.mark(entry.user, entry.id, early)
        while len(mine) > self.per_user:
            self._forget_for_user(mine.popleft())
        self.expire(entry.partition, now_s)

    def _forget_for_user(self, old: Entry) -> None:
        key = (old.user, old.partition)
        self._dropped_after[key] = max(self._dropped_after.get(key, -1), old.offset)
        ids = self._by_id.get(old.user)
        if ids is not None and ids.get(old.id) is old:
            del ids[old.id]

    def expire(self, partition: int, now_s: float) -> None:
        """Drop the partition's oldest records over the count or age bound."""
        part = self._parts[partition]
        oldest_allowed = now_s - self.max_age_s
        fifo = part.fifo
        while fifo and (len(fifo) > self.per_partition or fifo[0].at_s < oldest_allowed):
            old = fifo.popleft()
            part.window_start = old.offset + 1
            mine = self._users.get(old.user)
            if mine and mine[0] is old:
                mine.popleft()
                ids = self._by_id.get(old.user)
                if ids is not None and ids.get(old.id) is old:
                    del ids[old.id]
                if not mine:
                    del self._users[old.user]
                    self._by_id.pop(old.user, None)

    def resume(self, user: str, since: tuple[str, int] | None) -> Resume:
        """What a connecting client of `user` is sent before live notifications."""
        mine = list(self._users.get(user, ()))
        if since is None:
            return Resume(None, mine, {})
        epoch, offset = since
        incarnation, _, part_text = epoch.rpartition(":")
        part = self._parts.get(int(part_text)) if part_text.isdigit() else None
        if incarnation != self.incarnation or part is None:
            return Resume(False, mine, {})
        partition = int(part_text)
        covered = (
            offset + 1 >= part.window_start
            and offset < part.head
            and self._dropped_after.get((user, partition), -1) <= offset
        )
        if not covered:
            return Resume(False, mine, {})
        missed = [e for e in mine if e.partition == partition and e.offset > offset]
        return Resume(True, missed, {partition: offset})

    def find(self, user: str, ids: tuple[str, ...]) -> list[Entry]:
        """The user's own notifications among `ids` (another user's ids are never found)."""
        known = self._by_id.get(user, {})
        return [known[i] for i in ids if i in known]

    def mark(self, user: str, delivery_id: str, state: str) -> Entry | None:
        """Apply a receipt; the entry when its state changed, else None."""
        entry = self._by_id.get(user, {}).get(delivery_id)
        if entry is None:
            key = (user, delivery_id)
            if self._early.get(key) != "read":
                self._early[key] = state
            while len(self._early) > EARLY_RECEIPTS:
                self._early.popitem(last=False)
            return None
        if state == "read" and not entry.read:
            entry.read = entry.seen = True
            return entry
        if state == "seen" and not entry.seen:
            entry.seen = True
            return entry
        return None

    def size(self) -> int:
        return sum(len(p.fifo) for p in self._parts.values())
