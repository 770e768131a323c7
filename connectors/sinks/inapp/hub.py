"""Open connections and the fan-out to them, on the event loop's thread.

Writes never wait: a frame is handed to the connection's transport at once (`websockets`'
`broadcast`), and a connection whose unsent bytes exceed `queue_bytes` is dropped with 4108
"slow" instead of being allowed to grow memory or hold up anyone else. The queue is therefore
the socket's write buffer, bounded in bytes; each connection's kernel send buffer is capped
too (`SNDBUF`), so a client that stops reading is found after at most about
`queue_bytes + SNDBUF` bytes.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from streams import metrics
from websockets.asyncio.server import ServerConnection, broadcast
from websockets.protocol import State

from connectors.sinks.inapp import wire

SNDBUF = 64 * 1024


@dataclass(eq=False)
class Conn:
    ws: ServerConnection
    user: str
    org: str
    exp: float
    after: dict[int, int] = field(default_factory=dict)  # partition -> last offset sent
    closing: bool = False


def cap_send_buffer(ws: ServerConnection) -> None:
    sock = ws.transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)


class Hub:
    def __init__(self, queue_bytes: int) -> None:
        self.queue_bytes = queue_bytes
        self.by_user: dict[str, set[Conn]] = {}
        self.by_org: dict[str, set[Conn]] = {}
        self.count = 0

    def add(self, conn: Conn) -> bool:
        """Register; True when it is the user's first connection to this gateway."""
        mine = self.by_user.setdefault(conn.user, set())
        first = not mine
        mine.add(conn)
        self.by_org.setdefault(conn.org, set()).add(conn)
        self.count += 1
        metrics.INAPP_CONNECTIONS.set(self.count)
        return first

    def remove(self, conn: Conn) -> bool:
        """Unregister; True when it was the user's last connection to this gateway."""
        mine = self.by_user.get(conn.user)
        if mine is None or conn not in mine:
            return False
        mine.discard(conn)
        org = self.by_org.get(conn.org)
        if org is not None:
            org.discard(conn)
            if not org:
                del self.by_org[conn.org]
        self.count -= 1
        metrics.INAPP_CONNECTIONS.set(self.count)
        if mine:
            return False
        del self.by_user[conn.user]
        return True

    def all(self) -> list[Conn]:
        return [c for conns in self.by_user.values() for c in conns]

    def send(self, conns: Iterable[Conn], frame: str, kind: str) -> int:
        """Write `frame` to each open connection now; drop the slow ones. How many got it."""
        live = [c for c in conns if not c.closing and c.ws.protocol.state is State.OPEN]
        if not live:
            return 0
        broadcast([c.ws for c in live], frame)
        sent = 0
        for c in live:
            transport = c.ws.transport
            if transport is not None and transport.get_write_buffer_size() > self.queue_bytes:
                self.drop_slow(c)
            else:
                sent += 1
        metrics.INAPP_SENT.labels(kind=kind).inc(sent)
        return sent

    def drop_slow(self, conn: Conn) -> None:
        conn.closing = True
        metrics.INAPP_QUEUE_DROPS.inc()
        metrics.INAPP_DISCONNECTS.labels(code=str(wire.CLOSE_SLOW)).inc()
        # The close frame would queue behind the unsent bytes: give it a short while, then
        # the transport is aborted by websockets' close timeout.
        asyncio.get_running_loop().create_task(conn.ws.close(wire.CLOSE_SLOW, "slow"))

    def notify(self, conns: Iterable[Conn], partition: int, offset: int, frame: str,
               routed_at_ms: int) -> None:  # fmt: skip
        """Send one notification to the connections that have not had it yet."""
        fresh = [c for c in conns if c.after.get(partition, -1) < offset]
        for c in fresh:
            c.after[partition] = offset
        if self.send(fresh, frame, "notification"):
            metrics.INAPP_FANOUT_SECONDS.observe(max(0.0, time.time() - routed_at_ms / 1000))
