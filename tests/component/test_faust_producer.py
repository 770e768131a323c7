"""The Faust worker's producer batches: 10 ms linger and 256 KB batches, not 1 ms and 16 KB
(one produce request per millisecond cost the worker's event loop a third of its time)."""

from __future__ import annotations

from streams.agents.app import PRODUCER_LINGER_MS, PRODUCER_MAX_BATCH_BYTES, create_app
from streams.settings import Settings


def test_worker_producer_lingers_and_batches_large() -> None:
    app, _ = create_app(Settings(), "127.0.0.1:9")
    settings = app.producer._settings_default()
    assert settings["linger_ms"] == PRODUCER_LINGER_MS == 10
    assert settings["max_batch_size"] == PRODUCER_MAX_BATCH_BYTES == 256 * 1024
