"""The CDC source on a thread, for the integration tests that run it in-process."""

from __future__ import annotations

import threading

from connectors.sources.postgres_cdc.source import PostgresCdcSource


class Running:
    """The source on a thread; `stop()` ends it and re-raises anything it raised."""

    def __init__(self, source: PostgresCdcSource) -> None:
        self.source = source
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.source.run(self.stop_event)
        except BaseException as exc:
            self.error = exc

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the CDC source did not stop"
        if self.error is not None:
            raise self.error
