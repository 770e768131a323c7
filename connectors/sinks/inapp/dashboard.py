"""A stand-in dashboard for `make run`: one user's connection on a thread that shows each
notification (prints it) and acknowledges it `seen`, as the inbox page does."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect


class Dashboard:
    def __init__(self, url: str, token: str, on_frame: Callable[[dict[str, Any]], None]) -> None:
        self._ws = connect(url, open_timeout=10, close_timeout=2)
        self._ws.send(json.dumps({"type": "connect", "token": token}))
        self._on_frame = on_frame
        self._thread = threading.Thread(target=self._run, name="dashboard", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for data in self._ws:
                frame = json.loads(data)
                self._on_frame(frame)
                if frame.get("type") == "notification" and not frame.get("seen"):
                    self._ws.send(json.dumps({"type": "seen", "ids": [frame["id"]]}))
        except ConnectionClosed:
            pass

    def close(self) -> None:
        self._ws.close()
        self._thread.join(5)
