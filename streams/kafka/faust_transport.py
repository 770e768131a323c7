"""Faust's Kafka transport, with the consumer's fetch wait taken from settings.

Faust's aiokafka driver hard-codes `fetch_max_wait_ms=1500` for the worker's consumer. On a
Kafka cluster that only bounds idle polling: a fetch returns as soon as data arrives. The
embedded broker (Tansu 0.6) holds every fetch for its whole wait whether data arrived or not
(`tansu-broker/src/broker/fetch.rs`: fetch, then sleep the remaining wait), so there every
Faust hop (normalize, state, conflicts) cost up to 1.5 s. Measured on the bench's system
(bench/routing.py, row commit -> CDC -> normalize -> route -> delivery at 250 changes/s, on a
fresh broker, 6 partitions): p50 281 ms, p99 3.2 s with 1500 ms; p50 49 ms with 50 ms.

The wait is `WEDSYNC_FAUST_FETCH_WAIT_MS` (default 50): shorter means lower latency on the
embedded broker and more fetch requests while idle (the broker's CPU goes from ~24% to ~31%
idle at 50 ms, ~50% at 10 ms, measured on the bench's system at rest).
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

import faust
from faust.transport.drivers import aiokafka as driver


class _ConsumerThread(driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # read by AIOKafkaConsumer.start() when it builds its Fetcher
        consumer._fetch_max_wait_ms = cast(App, self.app).fetch_max_wait_ms
        return consumer


class _Consumer(driver.Consumer):
    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(driver.Transport):
    Consumer: ClassVar[Any] = _Consumer


class App(faust.App):
    """faust.App whose worker consumer fetches with `fetch_max_wait_ms`."""

    def __init__(self, *args: Any, fetch_max_wait_ms: int, **kwargs: Any) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)
