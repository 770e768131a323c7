"""`wedsync inapp`: the WebSocket server (the `websockets` library) and its lifecycle.

`/ws` speaks PROTOCOL.md; `/inbox` (and `/inbox.js`) serve the inbox page; `/healthz` answers
200 once the history is read and until draining starts (for a load balancer in front of this
port; the process's /metrics and /healthz are served apart, as every process's are:
`streams.observe`).
SIGTERM drains: new connections get 4101, open ones are closed with 4200 ("reconnect now",
to another gateway), the gateway says `gone` on the presence topic and flushes its producer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from http import HTTPStatus
from importlib import resources
from typing import Any

from streams import metrics
from streams.kafka.codec import TopicCodecs
from streams.kafka.connection import Kafka
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from connectors.sinks.inapp import feed, wire
from connectors.sinks.inapp.auth import Claims, TokenRejected, Verifier
from connectors.sinks.inapp.config import GatewaySettings
from connectors.sinks.inapp.gateway import Gateway
from connectors.sinks.inapp.hub import Conn, cap_send_buffer

log = logging.getLogger(__name__)
PAGES = {"/inbox": ("inbox.html", "text/html; charset=utf-8"),
         "/inbox.js": ("inbox.js", "text/javascript; charset=utf-8")}  # fmt: skip
KNOWN_CODES = {1000, 1001, 1006, 1011, *wire.CLOSE_REASONS}


def verifier(settings: GatewaySettings) -> Verifier:
    return Verifier(
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        secret=settings.jwt_secret.get_secret_value() if settings.jwt_secret else None,
        jwks=Verifier.load_jwks(settings.jwks_file) if settings.jwks_file else None,
        leeway_s=settings.jwt_leeway_s,
    )


def _response(status: HTTPStatus, body: bytes, content_type: str) -> Response:
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))),
                       ("Cache-Control", "no-store")])  # fmt: skip
    return Response(status.value, status.phrase, headers, body)


class GatewayServer:
    def __init__(self, bootstrap: Kafka, settings: GatewaySettings, codecs: TopicCodecs) -> None:
        metrics.export("inapp")  # this process's /metrics serves them
        self.bootstrap = bootstrap
        self.settings = settings
        self.codecs = codecs
        self.verifier = verifier(settings)
        self.gateway: Gateway | None = None
        self.feed: feed.Feed | None = None
        self.server: Server | None = None
        self.port = settings.port
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def healthy(self) -> bool:
        """The history is read and the gateway is not draining."""
        return self.gateway is not None and self.gateway.ready and not self.gateway.draining

    # ---- HTTP ---------------------------------------------------------------------------
    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/ws":
            return None
        if path == "/healthz":
            ok = self.healthy
            status = HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE
            return _response(status, b"ok\n" if ok else b"not ready\n", "text/plain")
        if path in PAGES:
            name, ctype = PAGES[path]
            body = resources.files("connectors.sinks.inapp").joinpath("page", name).read_bytes()
            return _response(HTTPStatus.OK, body, ctype)
        return _response(HTTPStatus.NOT_FOUND, b"not found: try /inbox or /ws\n", "text/plain")

    # ---- WebSocket ------------------------------------------------------------------------
    async def _close(self, ws: ServerConnection, code: int, reason: str | None = None) -> None:
        metrics.INAPP_DISCONNECTS.labels(code=str(code)).inc()
        await ws.close(code, (reason or wire.CLOSE_REASONS[code])[:120])

    async def _hello(self, ws: ServerConnection) -> tuple[Claims, wire.Position | None] | None:
        try:
            data = await asyncio.wait_for(ws.recv(), self.settings.connect_timeout_s)
            frame = wire.parse(data)
        except TimeoutError:
            await self._close(ws, wire.CLOSE_PROTOCOL, "no connect frame in time")
            return None
        except wire.BadFrame as exc:
            await self._close(ws, wire.CLOSE_PROTOCOL, str(exc))
            return None
        if not isinstance(frame, wire.Connect):
            await self._close(ws, wire.CLOSE_PROTOCOL, "the first frame must be connect")
            return None
        try:
            return self.verifier.verify(frame.token, time.time()), frame.since
        except TokenRejected as exc:
            metrics.INAPP_AUTH_FAILURES.labels(code=str(exc.code)).inc()
            await self._close(ws, exc.code, exc.reason)
            return None

    async def handler(self, ws: ServerConnection) -> None:
        gw = self.gateway
        assert gw is not None
        if gw.draining:
            return await self._close(ws, wire.CLOSE_DRAINING)
        if gw.hub.count >= self.settings.max_connections or not gw.ready:
            return await self._close(ws, wire.CLOSE_OVERLOADED)
        cap_send_buffer(ws)
        hello = await self._hello(ws)
        if hello is None:
            return None
        claims, since = hello
        conn = gw.open(ws, claims, since)
        expiry = asyncio.get_running_loop().call_later(
            max(0.0, conn.exp + self.settings.refresh_grace_s - time.time()), self._expire, conn
        )
        try:
            async for data in ws:
                expiry = self._frame(conn, data, expiry)
        except ConnectionClosed:
            pass
        finally:
            expiry.cancel()
            gw.close(conn)
            code = ws.close_code if ws.close_code is not None else 1006
            if not conn.closing:  # the gateway counted the closes it started
                label = str(code) if code in KNOWN_CODES else "other"
                metrics.INAPP_DISCONNECTS.labels(code=label).inc()

    def _frame(self, conn: Conn, data: str | bytes, expiry: asyncio.TimerHandle) -> Any:
        gw = self.gateway
        assert gw is not None
        try:
            frame = wire.parse(data)
        except wire.BadFrame as exc:
            gw.hub.send([conn], wire.dumps({"type": "error", "reason": str(exc)}), "control")
            return expiry
        if isinstance(frame, wire.Mark):
            if gw.mark(conn, frame.state, frame.ids) < len(frame.ids):
                reason = "some ids are not notifications of yours the gateway still holds"
                gw.hub.send([conn], wire.dumps({"type": "error", "reason": reason}), "control")
        elif isinstance(frame, wire.Refresh):
            return self._refresh(conn, frame.token, expiry)
        elif isinstance(frame, wire.Ping):
            gw.hub.send([conn], '{"type":"pong"}', "control")
        else:  # a second connect
            gw.hub.send([conn], wire.dumps({"type": "error", "reason": "already connected"}),
                        "control")  # fmt: skip
        return expiry

    def _refresh(self, conn: Conn, token: str, expiry: asyncio.TimerHandle) -> Any:
        assert self.gateway is not None
        try:
            claims = self.verifier.verify(token, time.time())
        except TokenRejected as exc:
            metrics.INAPP_AUTH_FAILURES.labels(code=str(exc.code)).inc()
            self._spawn(self._close(conn.ws, exc.code, exc.reason))
            conn.closing = True
            return expiry
        if claims.user != conn.user:
            conn.closing = True
            self._spawn(self._close(conn.ws, wire.CLOSE_BAD_TOKEN, "refresh is for another user"))
            return expiry
        conn.exp = claims.exp
        expiry.cancel()
        frame = {"type": "refreshed", "expires_in": round(claims.exp - time.time(), 1)}
        self.gateway.hub.send([conn], wire.dumps(frame), "control")
        return asyncio.get_running_loop().call_later(
            max(0.0, claims.exp + self.settings.refresh_grace_s - time.time()), self._expire, conn
        )

    def _expire(self, conn: Conn) -> None:
        if not conn.closing:
            conn.closing = True
            self._spawn(self._close(conn.ws, wire.CLOSE_EXPIRED))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        incarnation = await asyncio.to_thread(feed.incarnation, self.bootstrap)
        producer = feed.producer(self.bootstrap)
        self.gateway = Gateway(self.settings, incarnation, self.codecs, producer)
        self.feed = feed.Feed(self.bootstrap, self.settings, self.codecs, loop,
                              self.gateway.on_batch)  # fmt: skip
        await asyncio.to_thread(self.feed.start, time.time())
        s = self.settings
        self.server = await serve(
            self.handler, s.host, s.port, process_request=self._http, compression=None,
            max_size=wire.MAX_FRAME_BYTES, max_queue=4, ping_interval=s.ping_interval_s,
            ping_timeout=s.ping_timeout_s, close_timeout=2, server_header=None,
        )  # fmt: skip
        self.port = next(iter(self.server.sockets)).getsockname()[1]
        self._spawn(self._background())

    async def _background(self) -> None:
        gw = self.gateway
        assert gw is not None
        beat = 0.0
        while True:
            gw.producer.poll(0)
            if time.monotonic() - beat >= self.settings.presence_heartbeat_s:
                beat = time.monotonic()
                gw.heartbeat()
            await asyncio.sleep(0.05)

    async def drain(self) -> None:
        """Stop: refuse new connections, tell open ones to reconnect now, leave presence."""
        gw = self.gateway
        if gw is None:
            return
        gw.draining = True
        conns = gw.hub.all()
        log.info("draining: closing %d connections with 4200", len(conns))
        for c in conns:
            c.closing = True
        closes = [self._close(c.ws, wire.CLOSE_RESTART) for c in conns]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*closes, return_exceptions=True),
                                   self.settings.drain_timeout_s)  # fmt: skip
        for task in list(self._tasks):
            task.cancel()
        gw.goodbye()
        await asyncio.to_thread(gw.producer.flush, 10)
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        if self.feed is not None:
            await asyncio.to_thread(self.feed.stop)

    def run_blocking(self, stop: threading.Event) -> None:
        """Run on this thread's own event loop until `stop` is set (make run, benchmarks)."""

        async def main() -> None:
            await self.start()
            while not stop.is_set():
                await asyncio.sleep(0.1)
            await self.drain()

        asyncio.run(main())

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        log.info("in-app gateway %s on ws://%s:%d/ws (inbox: http://%s:%d/inbox)",
                 self.settings.gateway_id, self.settings.host, self.port,
                 self.settings.host, self.port)  # fmt: skip
        await stop.wait()
        await self.drain()
