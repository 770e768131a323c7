"""What `make run` shows: every routed delivery and every provider's answer as a line, and,
on a terminal, a live board above them (rich): records per stage, deliveries per destination
(routed, delivered, retried, dead-lettered, paused), each integration's health from the SLA
agent, and the addresses to open. `Watch.until(...)` reads the topics until a condition holds.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from streams import topics
from streams.errors import DecodeError
from streams.kafka.codec import TopicCodecs

COLOURS = {"healthy": "green", "degraded": "yellow", "failing": "red"}
OUTCOME_COLOURS = {"delivered": "green", "seen": "green", "retry_scheduled": "yellow",
                   "dead_lettered": "red", "paused": "red", "rejected": "red"}  # fmt: skip


KIND_NAMES = {"photography_crm": "photography CRM", "tave": "Tave CRM",
              "honeybook": "HoneyBook CRM", "light_blue": "Light Blue CRM",
              "google_calendar": "Google Calendar", "outlook": "Outlook calendar",
              "outlook_calendar": "Outlook calendar", "caldav": "CalDAV calendar",
              "icloud": "iCloud calendar", "venue_booking": "venue booking system",
              "mailchimp": "Mailchimp", "email_marketing": "email marketing",
              "webhook": "webhook endpoint"}  # fmt: skip


def integration_label(vendor: str, kind: str) -> str:
    """'Photo · Google Calendar': an integration as its vendor knows it."""
    return f"{vendor} · {KIND_NAMES.get(kind, kind.replace('_', ' '))}"


def health_rows(health: Mapping[str, tuple[str, str, frozenset[str]]],
                labels: Mapping[str, str]) -> list[tuple[str, str, str, str]]:  # fmt: skip
    """(integration, destination, state, alerts) per SLA key: an integration by its label
    (vendor and kind), a personal channel by its destination ('email'), never an id."""
    rows = []
    for key, (dest, state, firing) in health.items():
        name = labels.get(key) or (key if key == dest else f"a {dest} integration")
        rows.append((name, dest, state, ", ".join(sorted(firing))))
    return sorted(rows)


def _target(record: dict[str, Any]) -> str:
    """Where a delivery goes, without secrets or message content."""
    for field in ("to_address", "channel", "to_number", "user_id", "endpoint_url"):
        if record.get(field):
            return str(record[field])
    return str(record.get("calendar_id") or "")


class Watch:
    """Reads the pipeline's topics from the start; prints and counts what it sees."""

    def __init__(self, bootstrap: str, codecs: TopicCodecs, name_of: dict[str, str],
                 on_inapp: Callable[[str, str], None]) -> None:  # fmt: skip
        self.codecs, self.name_of, self.on_inapp = codecs, name_of, on_inapp
        self.console = Console(highlight=False)
        self.stages: Counter[str] = Counter()
        self.routed: Counter[str] = Counter()
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self.got: set[tuple[str, str, str]] = set()
        self.by_type: Counter[str] = Counter()  # routed deliveries per event type
        self.seen_in: dict[str, Counter[str]] = {"CDC changes": Counter(),
                                                 "domain events": Counter()}  # fmt: skip
        self.routed_ids: set[str] = set()
        self.delivered: dict[str, float] = {}  # delivery id -> commit -> answer, ms
        self.results: list[dict[str, Any]] = []
        self.health: dict[str, tuple[str, str, frozenset[str]]] = {}
        self.story = "starting"
        self.links: list[str] = []
        self.labels: dict[str, str] = {}  # SLA key (integration id) -> 'Photo · Tave CRM'
        self._by_deliver = {t.deliver.name: d for d, t in topics.DELIVER.items()}
        counted = {topics.INGEST_CDC.name: "CDC changes", topics.EVENTS.name: "domain events",
                   topics.INGEST_WEBHOOKS.name: "inbound webhooks"}  # fmt: skip
        counted |= {t.retry.name: f"retry:{d.value}" for d, t in topics.DELIVER.items()}
        counted |= {t.dlq.name: f"dlq:{d.value}" for d, t in topics.DELIVER.items()}
        self._counted = counted
        self._consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "wedsync-demo",
                                   "enable.auto.commit": False, "fetch.wait.max.ms": 50,
                                   "log.connection.close": False})  # fmt: skip
        names = [*self._by_deliver, *counted, topics.DELIVERY_RESULTS.name]
        self._consumer.assign([TopicPartition(n, p, 0) for n in names
                               for p in range(topics.topic(n).partitions)])  # fmt: skip
        self.live: Live | None = None
        if self.console.is_terminal:
            self.live = Live(self.board(), console=self.console, refresh_per_second=4,
                             transient=False)  # fmt: skip
            self.live.start()

    def say(self, text: str, style: str = "") -> None:
        self.console.print(text, style=style or None, soft_wrap=True)
        sys.stdout.flush()

    def chapter(self, text: str) -> None:
        self.story = text
        self.say(text, "bold cyan")

    # ---- reading -----------------------------------------------------------------------
    def pump(self, timeout: float = 0.2) -> None:
        for msg in self._consumer.consume(1000, timeout):
            if msg.error():
                continue
            name = msg.topic() or ""
            if name in self._counted:
                self.stages[self._counted[name]] += 1
                self._what(self._counted[name], name, msg.value())
            elif name in self._by_deliver:
                self._routed(self._by_deliver[name], msg.value() or b"")
            else:
                self._result(self.codecs[topics.DELIVERY_RESULTS].decode(msg.value()))
        if self.live is not None:
            self.live.update(self.board())

    def _what(self, stage: str, name: str, value: bytes | None) -> None:
        """Per table (CDC changes) and per type (domain events), for `missing`."""
        if stage not in self.seen_in:
            return
        try:
            record = self.codecs[topics.topic(name)].decode(value)
        except DecodeError:
            return
        kind = record["source"]["table"] if stage == "CDC changes" else record["event_type"]
        self.seen_in[stage][str(kind)] += 1

    def missing(self, want: set[tuple[str, str, str]]) -> str:
        """What a timed-out wait lacked and how far the records got: the expected deliveries
        not routed, the routed ones not delivered, the CDC changes per table and the domain
        events per type that were read."""
        lacking = sorted(f"{t} {d} {self.name_of.get(r, r)}" for t, d, r in want - self.got)
        undelivered = len(self.routed_ids - set(self.delivered))
        seen = "; ".join(f"{stage} read: " + ", ".join(f"{k} {n}" for k, n in sorted(c.items()))
                         for stage, c in self.seen_in.items())  # fmt: skip
        return (
            f"not routed: {', '.join(lacking) or 'none'}; routed but not delivered: "
            f"{undelivered}; {seen}"
        )

    def _routed(self, dest: topics.Destination, value: bytes) -> None:
        record = self.codecs[topics.DELIVER[dest].deliver].decode(value)
        recipient = record.get("recipient_id") or ""
        self.got.add((record["event_type"], dest.value, recipient))
        self.by_type[record["event_type"]] += 1
        self.routed_ids.add(record["delivery_id"])
        self.routed[dest.value] += 1
        who = self.name_of.get(recipient, "a couple" if dest is topics.Destination.INAPP
                               else "a vendor")  # fmt: skip
        if dest is topics.Destination.INAPP:
            self.on_inapp(record["user_id"], who)
        self.say(f"  routed     {record['event_type']:<28} {dest.value:<9} {who:<8} "
                 f"{_target(record)}")  # fmt: skip

    def _result(self, result: dict[str, Any]) -> None:
        self.results.append(result)
        outcome, dest = result["outcome"], result["destination"]
        self.outcomes[(dest, outcome)] += 1
        lag = result["completed_at_ms"] - result["source_ts_ms"]
        if outcome in ("delivered", "seen"):  # seen: on a dashboard
            self.delivered[result["delivery_id"]] = lag
        error = f" ({result['error_class']})" if result["error_class"] else ""
        self.say(f"  {outcome:<10} {result['event_type']:<28} {dest:<9} "
                 f"{result['target'][:40]:<40} status={result['status_code']} "
                 f"id={(result['provider_id'] or '-')[:24]} {lag} ms{error}",
                 OUTCOME_COLOURS.get(outcome, ""))  # fmt: skip

    def show_health(self, healths: Mapping[str, Any]) -> None:
        """Take the SLA agent's latest health for the board; print each change of state."""
        for key, h in healths.items():
            before = self.health.get(key)
            self.health[key] = (h.destination, h.state, h.firing)
            if before is not None and before[1] != h.state:
                name = health_rows({key: self.health[key]}, self.labels)[0][0]
                self.say(f"  health     {h.destination:<9} {name[:36]:<36} {before[1]} -> "
                         f"{h.state} {', '.join(sorted(h.firing))}",
                         f"bold {COLOURS.get(h.state, 'white')}")  # fmt: skip

    def until(self, done: Callable[[], bool], timeout: float, what: str,
              alive: Callable[[], bool] = lambda: True) -> bool:  # fmt: skip
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline or not alive():
                self.say(f"not in {timeout:.0f} s: {what}", "bold red")
                return False
            self.pump()
        return True

    # ---- the board ---------------------------------------------------------------------
    def board(self) -> Group:
        flow = Table(title="records per stage", expand=False)
        for col in ("CDC changes", "inbound webhooks", "domain events"):
            flow.add_column(col, justify="right")
        flow.add_row(*(str(self.stages[c]) for c in ("CDC changes", "inbound webhooks",
                                                     "domain events")))  # fmt: skip
        dests = Table(title="deliveries per destination")
        for col in ("destination", "routed", "delivered", "retries", "dead letters", "paused"):
            dests.add_column(col, justify="right" if col != "destination" else "left")
        for d in topics.Destination:
            ok = self.outcomes[(d.value, "delivered")] + self.outcomes[(d.value, "seen")]
            dests.add_row(d.value, str(self.routed[d.value]), f"[green]{ok}",
                          f"[yellow]{self.outcomes[(d.value, 'retry_scheduled')]}",
                          f"[red]{self.outcomes[(d.value, 'dead_lettered')]}",
                          f"[red]{self.outcomes[(d.value, 'paused')]}")  # fmt: skip
        health = Table(title="integration health (SLA agent)")
        for col in ("integration", "destination", "state", "alerts"):
            health.add_column(col)
        for name, dest, state, alerts in health_rows(self.health, self.labels):
            health.add_row(name, dest, f"[{COLOURS.get(state, 'white')}]{state}", alerts)
        links = "\n".join(self.links)
        return Group(Panel(self.story, title="wedding week"), flow, dests, health,
                     Panel(links or "-", title="open"))  # fmt: skip

    def close(self) -> None:
        if self.live is not None:
            self.live.update(self.board())
            self.live.stop()
        self._consumer.close()
