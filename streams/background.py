"""A blocking `run(stop)` loop on a daemon thread: the CDC source and the routing engine in
`make run`, the benchmarks and the tests. `stop()` sets the event, joins, and re-raises what
the loop raised, so a failure in the background is never silent."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Background:
    """Runs `run(stop_event)` on a daemon thread named `name` from construction on."""

    def __init__(self, run: Callable[[threading.Event], object], name: str) -> None:
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, args=(run,), name=name, daemon=True)
        self.thread.start()

    def _main(self, run: Callable[[threading.Event], object]) -> None:
        try:
            run(self.stop_event)
        except BaseException as exc:
            self.error = exc

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop and join; re-raise what the loop raised (once). A loop that does not stop
        within `timeout` raises TimeoutError."""
        self.stop_event.set()
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise TimeoutError(f"{self.thread.name} did not stop within {timeout:.0f} s")
        error, self.error = self.error, None
        if error is not None:
            raise error
