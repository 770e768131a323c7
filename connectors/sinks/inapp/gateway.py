"""The gateway's state and its reactions, on the event loop's thread: what arrives from Kafka
(notifications, receipts, presence) and what a client asks (connect, refresh, seen/read).

Connect and resume are one synchronous step (no await between reading the history and
registering the connection), so no notification can fall between the replay and the live
stream; a per-connection offset mark drops anything already sent.
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import Any

from confluent_kafka import Producer
from streams import metrics
from streams.kafka.codec import TopicCodecs
from streams.topics import DELIVERY_RESULTS, INAPP_PRESENCE, INAPP_RECEIPTS, Destination

from connectors.sinks.inapp import wire
from connectors.sinks.inapp.auth import Claims
from connectors.sinks.inapp.config import GatewaySettings
from connectors.sinks.inapp.feed import NOTIFICATIONS, Batch, Notification, Receipt
from connectors.sinks.inapp.history import Entry, History
from connectors.sinks.inapp.hub import Conn, Hub
from connectors.sinks.inapp.presence import Change, Presence

log = logging.getLogger(__name__)
WRITER = ("wedsync.inapp.gateway", b"1")  # header on the results this gateway writes


class Gateway:
    def __init__(
        self, settings: GatewaySettings, incarnation: str, codecs: TopicCodecs, producer: Producer
    ) -> None:
        self.settings = settings
        self.id = settings.gateway_id
        self.history = History(
            incarnation,
            per_partition=settings.history_records,
            per_user=settings.history_per_user,
            max_age_s=settings.history_max_age_s,
        )
        self.presence = Presence(settings.presence_ttl_s)
        self.hub = Hub(settings.queue_bytes)
        self.producer = producer
        self._results = codecs[DELIVERY_RESULTS]
        self._presence_codec = codecs[INAPP_PRESENCE]
        self._seq = itertools.count()
        self.ready = False
        self.draining = False

    # ---- from Kafka ------------------------------------------------------------------------
    def on_batch(self, batch: Batch) -> None:
        now = time.time()
        for p, end in batch.log_ends.items():
            self.history.note_end(p, end)
        for item in batch.items:
            if isinstance(item, Notification):
                self._notification(item, now)
            elif isinstance(item, Receipt):
                self._receipt(item)
            else:
                self._presence_record(item.key, item.record, min(now, item.at_s))
        metrics.INAPP_HISTORY_RECORDS.set(self.history.size())
        if batch.caught_up and not self.ready:
            self.ready = True
            log.info("in-app gateway %s ready: %d notifications held for resume",
                     self.id, self.history.size())  # fmt: skip

    def _notification(self, n: Notification, now: float) -> None:
        rec = n.record
        entry = Entry(n.partition, n.offset, rec["user_id"], rec, n.at_s)
        self.history.add(entry, now)
        conns = self.hub.by_user.get(entry.user)
        if conns:
            frame = wire.with_state(self._frame(entry), False, False)
            self.hub.notify(conns, n.partition, n.offset, frame, rec["routed_at_ms"])

    def _frame(self, e: Entry) -> dict[str, Any]:
        return wire.notification(e.record, self.history.epoch(e.partition), e.offset)

    def _receipt(self, r: Receipt) -> None:
        entry = self.history.mark(r.user, r.record["delivery_id"], r.record["outcome"])
        conns = self.hub.by_user.get(r.user)
        if entry is not None and conns:
            frame = {"type": "state", "id": entry.id, "seen": entry.seen, "read": entry.read}
            self.hub.send(conns, wire.dumps(frame), "state")

    def _presence_record(self, key: str, rec: dict[str, Any] | None, at: float) -> None:
        gateway, _, user = key.partition("|")
        changes: list[Change] = []
        if rec is None:
            if user:
                changes = self.presence.leave(gateway, user)
        elif rec["kind"] == "heartbeat":
            self.presence.heartbeat(gateway, at)
        elif rec["kind"] == "gone":
            changes = self.presence.gone(gateway)
        elif rec["kind"] == "join" and rec["user_id"]:
            name = rec.get("display_name") or ""
            changes = self.presence.join(gateway, rec["user_id"], rec["org_id"] or "", at, name)
        self._announce(changes)

    def _announce(self, changes: list[Change]) -> None:
        for org, event, user in changes:
            conns = self.hub.by_org.get(org)
            if conns:
                frame = {"type": "presence", "event": event, "user": user,
                         "name": self.presence.name(user)}  # fmt: skip
                self.hub.send(conns, wire.dumps(frame), "presence")
        if changes:
            metrics.INAPP_PRESENCE_USERS.set(self.presence.count())

    # ---- presence out ------------------------------------------------------------------------
    def _publish(self, key: str, kind: str | None, user: str | None = None,
                 org: str | None = None, name: str | None = None) -> None:  # fmt: skip
        value = None
        if kind is not None:
            value = self._presence_codec.encode({
                "event_id": f"{self.id}:{next(self._seq)}",
                "source_ts_ms": int(time.time() * 1000), "gateway_id": self.id,
                "kind": kind, "user_id": user, "org_id": org, "display_name": name or None,
            })  # fmt: skip
        self.producer.produce(INAPP_PRESENCE.name, value, key.encode())

    def heartbeat(self) -> None:
        """Say this gateway is alive; forget gateways that stopped saying so."""
        self._publish(self.id, "heartbeat")
        now = time.time()
        self.presence.heartbeat(self.id, now)
        for gone in self.presence.expired(now):
            if gone == self.id:
                continue
            log.info("gateway %s went silent: its users leave", gone)
            for user in self.presence.holdings(gone):
                self._publish(f"{gone}|{user}", None)  # tombstones, so compaction forgets
            self._announce(self.presence.gone(gone))

    def goodbye(self) -> None:
        self._publish(self.id, "gone")

    # ---- from clients ------------------------------------------------------------------------
    def open(self, ws: Any, claims: Claims, since: wire.Position | None) -> Conn:
        """Register a connection and send its `connected` frame and what it missed."""
        conn = Conn(ws, claims.user, claims.org, claims.exp)
        res = self.history.resume(
            claims.user, None if since is None else (since.epoch, since.offset)
        )
        result = {None: "fresh", True: "recovered", False: "not_recovered"}[res.recovered]
        metrics.INAPP_RESUMES.labels(result=result).inc()
        conn.after.update(res.after)
        hello = {
            "type": "connected", "user": claims.user, "org": claims.org, "gateway": self.id,
            "expires_in": max(0.0, round(claims.exp - time.time(), 1)),
            "recovered": res.recovered, "missed": len(res.entries),
            "presence": self.presence.online(claims.org) if claims.org else [],
            "name": claims.name,
            "names": self.presence.names(claims.org) if claims.org else {},
        }  # fmt: skip
        first = self.hub.add(conn)
        self.hub.send([conn], wire.dumps(hello), "control")
        for e in res.entries:
            conn.after[e.partition] = max(conn.after.get(e.partition, -1), e.offset)
            self.hub.send([conn], wire.with_state(self._frame(e), e.seen, e.read), "notification")
        if first:
            self._publish(f"{self.id}|{claims.user}", "join", claims.user, claims.org,
                          claims.name)  # fmt: skip
        return conn

    def close(self, conn: Conn) -> None:
        if self.hub.remove(conn):
            self._publish(f"{self.id}|{conn.user}", None)

    def mark(self, conn: Conn, state: str, ids: tuple[str, ...]) -> int:
        """Write seen/read receipts for the user's own notifications among `ids`."""
        entries = self.history.find(conn.user, ids)
        now_ms = int(time.time() * 1000)
        for e in entries:
            if (state == "seen" and e.seen) or e.read:  # already so: confirm it to the asker
                frame = {"type": "state", "id": e.id, "seen": e.seen, "read": e.read}
                self.hub.send([conn], wire.dumps(frame), "state")
                continue
            result = self._result(e, state, now_ms)
            value = self._results.encode(result)
            self.producer.produce(INAPP_RECEIPTS.name, value, conn.user.encode())
            self.producer.produce(
                DELIVERY_RESULTS.name, value, Destination.INAPP.value.encode(), headers=[WRITER]
            )
            metrics.INAPP_RECEIPTS.labels(state=state).inc()
        return len(entries)

    def _result(self, e: Entry, state: str, now_ms: int) -> dict[str, Any]:
        rec = e.record
        return {
            "delivery_id": rec["delivery_id"], "event_id": rec["event_id"],
            "event_type": rec["event_type"], "destination": Destination.INAPP.value,
            "target": f"inapp:{e.user}", "integration_id": rec.get("integration_id"),
            "attempt": rec.get("attempt", 0), "outcome": state, "status_code": None,
            "latency_ms": float(max(0, now_ms - rec["routed_at_ms"])), "provider_id": None,
            "error_class": None, "error_message": None, "source_ts_ms": rec["source_ts_ms"],
            "completed_at_ms": now_ms, "aggregate_id": rec["aggregate_id"],
            "aggregate_version": rec["aggregate_version"], "routed_at_ms": rec["routed_at_ms"],
            "source_topic": NOTIFICATIONS.name, "source_partition": e.partition,
            "source_offset": e.offset,
        }  # fmt: skip
