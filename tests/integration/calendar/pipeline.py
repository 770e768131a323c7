"""The whole inbound path for one vendor's calendar, for the end-to-end tests: the platform
schema seeded (the photographer's calendar integration as given), CDC, the worker with
routing, a platform booking on the wedding day (as the CRM normalizer emits it), the feed
(and the gateway for push providers) on their thread; deliveries read from the topics."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg2
from confluent_kafka import Producer
from connectors.calendar.feed.engine import CalendarFeed
from connectors.sinks.credentials import PostgresCredentialStore
from streams import topics
from streams.dev.demo import worker_process
from streams.dev.scenario import Endpoints, ids, seed
from streams.kafka.codec import TopicCodecs
from streams.settings import Settings

from tests.component.agents.harness import booking_changed
from tests.integration.agents_support import DeliveryReader
from tests.integration.calendar.support import FeedThread, wait
from tests.integration.cdc_support import PlatformDb

BOOKING_START, BOOKING_END = "2027-06-12T12:00", "2027-06-12T18:00"  # London, the wedding day


@dataclass
class Pipeline:
    k: dict[str, str]
    reader: DeliveryReader
    feed: CalendarFeed
    thread: FeedThread
    worker: Any
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Our photographer's calendar (the session's platform database and its state topic
        also hold the other tests' vendors)."""
        return next(k for k, c in self.feed.calendars.items()
                    if c.calendar.supplier_id == self.k["photo"])  # fmt: skip

    @property
    def both(self) -> set[tuple[str, str]]:
        """Where a double booking goes: the vendor's channels and the couple in-app."""
        photo = self.k["photo"]
        return {("email", photo), ("slack", photo), ("inapp", photo), ("inapp", self.k["couple"])}

    def sent(self, event_type: str, since: int = 0) -> set[tuple[str, str]]:
        return {
            (dest.value, r["recipient_id"])
            for dest, r in self.reader.records[since:]
            if r["event_type"] == event_type
        }

    def count(self, event_type: str, since: int = 0) -> int:
        couple = ("inapp", self.k["couple"])
        return sum(
            1
            for dest, r in self.reader.records[since:]
            if r["event_type"] == event_type and (dest.value, r["recipient_id"]) == couple
        )

    def report(self) -> str:
        sync = {k: (s.cursor, s.status, s.failures) for k, s in self.feed.sync.items()}
        got = [(d.value, r["event_type"]) for d, r in self.reader.records]
        return repr({"rounds": self.feed.rounds, "push_live": self.feed.push_live,
                     "sync": sync, "deliveries": got})  # fmt: skip


@dataclass(frozen=True)
class EndToEnd:
    """What every end-to-end test of a calendar runs on (the `e2e` fixture): the session's
    broker, this test's platform database, settings (its own app id) and codecs."""

    platform: PlatformDb
    bootstrap: str
    settings: Settings
    codecs: TopicCodecs

    def pipeline(
        self,
        endpoints: Endpoints,
        booking: tuple[str, str] = (BOOKING_START, BOOKING_END),
        **feed_options: Any,
    ) -> contextlib.AbstractContextManager[Pipeline]:
        return pipeline(self.platform, self.bootstrap, self.settings, self.codecs, endpoints,
                        booking, **feed_options)  # fmt: skip


@contextlib.contextmanager
def pipeline(
    platform: PlatformDb,
    bootstrap: str,
    settings: Settings,
    codecs: TopicCodecs,
    endpoints: Endpoints,
    booking: tuple[str, str] = (BOOKING_START, BOOKING_END),
    **feed_options: Any,
) -> Iterator[Pipeline]:
    k = ids()
    conn = psycopg2.connect(platform.dsn)
    conn.autocommit = True
    seed(conn.cursor(), k, endpoints)
    cdc = platform.start_cdc(bootstrap, codecs)
    reader = DeliveryReader(bootstrap, codecs)
    thread = FeedThread(settings, bootstrap, PostgresCredentialStore(platform.dsn), **feed_options)
    producer = Producer({"bootstrap.servers": bootstrap})
    running: Pipeline | None = None
    try:
        with worker_process(bootstrap, settings) as worker:
            booking_id = f"bk-{k['photo']}"  # ids unique per test: routing drops a seen one
            event = booking_changed(booking_id, *booking, supplier=k["photo"], client=k["couple"])
            value = codecs[topics.EVENTS].encode(event)
            producer.produce(topics.EVENTS.name, value, booking_id.encode())
            producer.flush(10)
            running = Pipeline(k, reader, thread.start(), thread, worker, {"conn": conn})
            wait(lambda: any(c.calendar.supplier_id == k["photo"]
                             for c in running.feed.calendars.values()), 60)  # fmt: skip
            yield running
            assert worker.poll() is None, "the worker stopped"
    except AssertionError as exc:
        if running is None:
            raise
        raise AssertionError(f"{exc}; {running.report()}") from exc
    finally:
        thread.stop()
        reader.close()
        cdc.stop()
        conn.close()
