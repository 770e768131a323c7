"""The in-app bench's baseline: a bare `websockets` broadcast server (see bench/inapp.py).

`python -m bench.inapp_bare PORT [BOOTSTRAP FETCH_WAIT_MS]`. No auth, no history, no
presence, no metrics: a connection's first frame names its user (the load clients send the
same `connect` frame as to the gateway, with a `user` field the gateway ignores), it gets a
`connected` frame back and is kept in a dict by user until it closes. `/healthz` answers 200.
With BOOTSTRAP, a thread reads the in-app topic with a plain confluent-kafka Consumer (every
partition assigned from its start, the given `fetch.wait.max.ms`), decodes each record with
the project's codec and hands the batch to the event loop, which sends each record as a JSON
frame to its user's connections with `websockets.asyncio.server.broadcast`. The server takes
the gateway's transport settings (no compression, the same frame size, queue and pings).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
from typing import Any

from bench.inapp_load import raise_nofile


def _feed(bootstrap: str, fetch_wait_ms: int, loop: asyncio.AbstractEventLoop,
          on_batch: Any, stop: threading.Event) -> None:  # fmt: skip
    from confluent_kafka import Consumer, TopicPartition
    from streams.kafka.codec import TopicCodecs
    from streams.settings import Settings
    from streams.topics import DELIVER, Destination

    topic = DELIVER[Destination.INAPP].deliver
    codec = TopicCodecs.from_settings(Settings())[topic]
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": "bench-bare", "enable.auto.commit": False,
        "fetch.wait.max.ms": fetch_wait_ms,
    })  # fmt: skip
    consumer.assign([TopicPartition(topic.name, p, 0) for p in range(topic.partitions)])
    while not stop.is_set():
        msgs = consumer.consume(2000, 0.05)
        records = [(m.partition(), m.offset(), codec.decode(m.value()))
                   for m in msgs if not m.error()]  # fmt: skip
        if records:
            loop.call_soon_threadsafe(on_batch, records)
    consumer.close()


async def serve_bare(port: int, bootstrap: str | None, fetch_wait_ms: int) -> None:
    from websockets.asyncio.server import ServerConnection, broadcast, serve
    from websockets.datastructures import Headers
    from websockets.exceptions import ConnectionClosed
    from websockets.http11 import Request, Response

    by_user: dict[str, set[ServerConnection]] = {}

    def http(_conn: ServerConnection, request: Request) -> Response | None:
        if request.path == "/healthz":
            return Response(200, "OK", Headers([("Content-Length", "3")]), b"ok\n")
        return None

    async def handler(ws: ServerConnection) -> None:
        user = str(json.loads(await ws.recv())["user"])
        by_user.setdefault(user, set()).add(ws)
        try:
            await ws.send(json.dumps({"type": "connected", "user": user}))
            async for _ in ws:
                pass
        except ConnectionClosed:
            pass
        finally:
            mine = by_user[user]
            mine.discard(ws)
            if not mine:
                del by_user[user]

    def on_batch(records: list[tuple[int, int, dict[str, Any]]]) -> None:
        for partition, offset, rec in records:
            conns = by_user.get(rec["user_id"])
            if conns:  # the gateway's frame: the same fields, so the same bytes on the wire
                frame = {"type": "notification", "id": rec["delivery_id"],
                         "event_id": rec["event_id"],
                         "notification_type": rec["notification_type"], "title": rec["title"],
                         "body": rec["body"], "link": rec["link"], "data": rec["data"],
                         "routed_at_ms": rec["routed_at_ms"], "epoch": f"bare:{partition}",
                         "offset": offset, "seen": False, "read": False}  # fmt: skip
                broadcast(conns, json.dumps(frame, separators=(",", ":")))

    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    stop = threading.Event()
    if bootstrap:
        args = (bootstrap, fetch_wait_ms, loop, on_batch, stop)
        threading.Thread(target=_feed, args=args, daemon=True).start()
    async with serve(handler, "127.0.0.1", port, process_request=http, compression=None,
                     max_size=64 * 1024, max_queue=4, ping_interval=20.0, ping_timeout=10.0,
                     close_timeout=2, server_header=None):  # fmt: skip
        await done.wait()
        stop.set()


def main(argv: list[str]) -> None:
    raise_nofile()
    bootstrap = argv[1] if len(argv) > 1 else None
    fetch_wait_ms = int(argv[2]) if len(argv) > 2 else 5
    asyncio.run(serve_bare(int(argv[0]), bootstrap, fetch_wait_ms))


if __name__ == "__main__":
    main(sys.argv[1:])
