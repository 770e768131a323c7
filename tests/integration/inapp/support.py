"""What the in-app gateway tests share: a broker per module, gateways in a thread or in their
own process, signed tokens, produced notifications, and a small synchronous client."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
from confluent_kafka import Producer
from connectors.sinks.inapp.config import GatewaySettings
from connectors.sinks.inapp.server import GatewayServer
from streams.kafka.codec import TopicCodecs
from streams.settings import Settings
from streams.topics import DELIVER, Destination
from websockets.sync.client import ClientConnection, connect

SECRET = "test-secret-of-32-bytes-or-more!!"
INAPP = DELIVER[Destination.INAPP].deliver
FAST = {
    "jwt_secret": SECRET,
    "ping_interval_s": 1.0,
    "ping_timeout_s": 1.0,
    "presence_heartbeat_s": 0.5,
    "presence_ttl_s": 2.0,
    "refresh_grace_s": 0.5,
    "jwt_leeway_s": 0.0,
    "drain_timeout_s": 3.0,
}


def token(user: str, org: str = "org-1", ttl: float = 300, **claims: Any) -> str:
    now = time.time()
    body = {"sub": user, "org": org, "exp": now + ttl, "iat": now, "aud": "wedsync-inapp",
            "iss": "wedsync", **claims}  # fmt: skip
    return jwt.encode({k: v for k, v in body.items() if v is not None}, SECRET, "HS256")


def notification(user: str, n: int = 0, **overrides: Any) -> dict[str, Any]:
    """An in-app delivery record as routing writes it."""
    event = f"evt-{n}-{uuid.uuid4().hex[:8]}"
    now = int(time.time() * 1000)
    record = {
        "delivery_id": f"dlv-{event}", "event_id": event, "event_type": "form.response_received",
        "aggregate_id": f"form-{n}", "aggregate_version": 100 + n, "source_ts_ms": now,
        "routed_at_ms": now, "recipient_id": user, "integration_id": None, "attempt": 0,
        "user_id": user, "notification_type": "form.response_received",
        "title": f"Form response {n}", "body": f"Alice & Bob answered form {n}",
        "link": f"/forms/{n}", "data": {"n": str(n)},
    }  # fmt: skip
    record.update(overrides)
    return record


class Notifier:
    """Produces in-app records the way routing does (keyed by user)."""

    def __init__(self, bootstrap: str) -> None:
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
        self.codec = TopicCodecs.from_settings(Settings())[INAPP]

    def send(self, user: str, n: int = 0, **overrides: Any) -> dict[str, Any]:
        record = notification(user, n, **overrides)
        self.producer.produce(INAPP.name, self.codec.encode(record), user.encode())
        self.producer.flush(10)
        return record


@dataclass
class GatewayThread:
    """A gateway on its own event loop in a thread of the test process."""

    bootstrap: str
    overrides: dict[str, Any] = field(default_factory=dict)
    server: GatewayServer | None = None

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = threading.Event()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        settings = GatewaySettings(**{"port": 0, **FAST, **self.overrides})
        self.server = GatewayServer(self.bootstrap, settings, TopicCodecs.from_settings(Settings()))

        async def main() -> None:
            self._stop = asyncio.Event()
            assert self.server is not None
            await self.server.start()
            self._started.set()
            await self._stop.wait()
            await self.server.drain()

        self._loop.run_until_complete(main())

    def start(self) -> GatewayThread:
        self._thread.start()
        assert self._started.wait(30), "gateway did not start"
        wait_ready(self.url.replace("ws://", "http://").replace("/ws", "/healthz"))
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"ws://127.0.0.1:{self.server.port}/ws"

    @property
    def gateway(self) -> Any:
        assert self.server is not None and self.server.gateway is not None
        return self.server.gateway

    def call(self, fn: Any) -> Any:
        """Run `fn()` on the gateway's loop and return its result."""
        done: dict[str, Any] = {}
        ev = threading.Event()

        def run() -> None:
            done["v"] = fn()
            ev.set()

        self._loop.call_soon_threadsafe(run)
        assert ev.wait(10)
        return done["v"]

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(20)


@contextmanager
def gateway(bootstrap: str, **overrides: Any) -> Iterator[GatewayThread]:
    """A started gateway; `port=` fixes its port (0 by default: any free one)."""
    g = GatewayThread(bootstrap, overrides).start()
    try:
        yield g
    finally:
        g.stop()


def free_port() -> int:
    """A port nothing listens on now, for a gateway that must come back on the same one."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout: float = 30.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} never answered 200")


MAIN = "from streams.app.cli import main; raise SystemExit(main())"


class GatewayProcess:
    """`wedsync inapp` in its own process (for SIGTERM and kill -9)."""

    def __init__(self, bootstrap: str, port: int, **overrides: Any) -> None:
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "WEDSYNC_INAPP_PORT": str(port)}
        for k, v in {**FAST, **overrides}.items():
            env[f"WEDSYNC_INAPP_{k.upper()}"] = str(v)
        self.port = port
        self.proc = subprocess.Popen(
            [sys.executable, "-c", MAIN, "inapp"], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        wait_ready(f"http://127.0.0.1:{port}/healthz")

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


class Client:
    """A dashboard connection: sends `connect`, keeps the frames it receives."""

    def __init__(self, url: str, tok: str, since: dict[str, Any] | None = None) -> None:
        self.ws: ClientConnection = connect(url, open_timeout=10, close_timeout=2)
        msg: dict[str, Any] = {"type": "connect", "token": tok}
        if since is not None:
            msg["since"] = since
        from websockets.exceptions import ConnectionClosed

        with contextlib.suppress(ConnectionClosed):  # refused at once: close_code() tells why
            self.ws.send(json.dumps(msg))
        self.frames: list[dict[str, Any]] = []

    def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(self.ws.recv(timeout))
        self.frames.append(frame)
        return frame

    def hello(self) -> dict[str, Any]:
        frame = self.recv()
        assert frame["type"] == "connected", frame
        return frame

    def until(self, pred: Any, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching frame in {timeout} s; got {self.frames[-5:]}")
            frame = self.recv(left)
            if pred(frame):
                return frame

    def notifications(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        got = []
        while len(got) < n:
            got.append(self.until(lambda f: f["type"] == "notification", timeout))
        return got

    def send(self, obj: dict[str, Any]) -> None:
        self.ws.send(json.dumps(obj))

    def close_code(self, timeout: float = 10.0) -> int | None:
        """Read until the server closes; its close code."""
        from websockets.exceptions import ConnectionClosed

        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.recv(deadline - time.monotonic())
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None
        except TimeoutError:
            return None
        return None

    def close(self) -> None:
        self.ws.close()


def raw_connect(url: str, tok: str, rcvbuf: int | None = None) -> socket.socket:
    """A connection that completes the handshake and `connect`, then never reads or answers a
    ping: a client that froze or lost its network without closing."""
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .encode()
    )  # fmt: skip
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    payload = json.dumps({"type": "connect", "token": tok}).encode()
    mask = os.urandom(4)
    header = bytes([0x81, 0x80 | 126]) + len(payload).to_bytes(2, "big")
    s.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    return s


def read_to_eof(s: socket.socket, timeout: float = 15.0) -> bytes:
    s.settimeout(timeout)
    out = bytearray()
    with contextlib.suppress(OSError):
        while chunk := s.recv(1 << 16):
            out += chunk
    return bytes(out)


def close_frame(code: int, reason: str) -> bytes:
    """An unmasked close frame as the server writes it."""
    body = code.to_bytes(2, "big") + reason.encode()
    return bytes([0x88, len(body)]) + body


def metric(name: str) -> float:
    """A sample's value in this process's registry, where a gateway thread counts (0 when
    absent)."""
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name) or 0.0
