"""The Faust worker's consumer fetches with the configured wait, not Faust's 1500 ms."""

from __future__ import annotations

from streams.agents.app import create_app
from streams.settings import Settings


async def test_worker_consumer_uses_the_configured_fetch_wait() -> None:
    app, _ = create_app(Settings(faust_fetch_wait_ms=7), "127.0.0.1:9")
    thread = app.consumer._new_consumer_thread()
    consumer = thread._create_worker_consumer(app.transport)
    try:
        assert consumer._fetch_max_wait_ms == 7
    finally:
        await consumer.stop()
