"""The in-app bench's load, each part in its own process (see bench/inapp.py).

`python -m bench.inapp_load clients URL FIRST COUNT SECRET`: opens COUNT WebSocket connections
(users FIRST .. FIRST+COUNT-1, one connection each), sends each its `connect` frame with a
token for its own user and waits for `connected`; prints one JSON line, then answers commands
read from stdin, one JSON line each: `count` (notifications received so far), `stats` (the
latencies, receive time minus `routed_at_ms`, in ms), `quit`.

`python -m bench.inapp_load produce BOOTSTRAP RATE SECONDS USERS`: produces RATE in-app records
a second for SECONDS to random users among the first USERS, keyed by user as routing does,
each stamped `routed_at_ms` = now just before it is handed to the producer; prints one JSON
line with how many were sent and acknowledged.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import sys
import time
import uuid
from typing import Any

OPENING_AT_ONCE = 20  # per process: four processes stay under the server's listen backlog (100)


def raise_nofile() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit; returns the hard limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def user_id(n: int) -> str:
    return f"user-{n:05d}"


def org_id(n: int) -> str:
    return f"org-{n // 10:04d}"  # organisations of ten users (a supplier's team)


def token(secret: str, n: int, ttl: float = 3600) -> str:
    import jwt

    now = time.time()
    claims = {"sub": user_id(n), "org": org_id(n), "exp": now + ttl, "iat": now,
              "aud": "wedsync-inapp", "iss": "wedsync"}  # fmt: skip
    return jwt.encode(claims, secret, "HS256")


async def _clients(url: str, first: int, count: int, secret: str) -> None:
    from websockets.asyncio.client import ClientConnection, connect
    from websockets.exceptions import ConnectionClosed

    latencies: list[float] = []
    open_conns: list[ClientConnection] = []
    failures: dict[str, int] = {}
    gate = asyncio.Semaphore(OPENING_AT_ONCE)
    readers: set[asyncio.Task[None]] = set()

    async def read(ws: ClientConnection) -> None:
        try:
            async for data in ws:
                if isinstance(data, str) and '"notification"' in data:
                    now_ms = time.time() * 1000
                    latencies.append(now_ms - json.loads(data)["routed_at_ms"])
        except ConnectionClosed:
            pass

    async def one(n: int) -> None:
        async with gate:
            try:
                ws = await connect(url, compression=None, open_timeout=60, ping_interval=None,
                                   close_timeout=1, max_size=1 << 20)  # fmt: skip
                hello = {"type": "connect", "token": token(secret, n), "user": user_id(n)}
                await ws.send(json.dumps(hello))
                frame = json.loads(await asyncio.wait_for(ws.recv(), 60))
            except ConnectionClosed as exc:
                key = f"closed {exc.rcvd.code if exc.rcvd else 1006}"
                failures[key] = failures.get(key, 0) + 1
                return
            except (OSError, TimeoutError) as exc:
                key = type(exc).__name__
                failures[key] = failures.get(key, 0) + 1
                return
        if frame.get("type") != "connected":
            failures["no connected frame"] = failures.get("no connected frame", 0) + 1
            return
        open_conns.append(ws)
        task = asyncio.create_task(read(ws))
        readers.add(task)
        task.add_done_callback(readers.discard)

    started = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(first, first + count)))
    _say({"connected": len(open_conns), "failures": failures,
          "seconds": round(time.perf_counter() - started, 2)})  # fmt: skip
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        if line == "count":
            _say({"received": len(latencies)})
        elif line == "stats":
            _say({"latencies_ms": [round(x, 2) for x in latencies]})
        elif line == "quit":
            break
    for ws in open_conns:  # abort: the server sees 10,000 resets, not 10,000 handshakes
        if ws.transport is not None:
            ws.transport.abort()


def _say(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def record(user: str, n: int, now_ms: int) -> dict[str, Any]:
    """An in-app delivery record as routing writes it."""
    event = f"bench-{n}-{uuid.uuid4().hex[:8]}"
    return {
        "delivery_id": f"dlv-{event}", "event_id": event, "event_type": "form.response_received",
        "aggregate_id": f"form-{n}", "aggregate_version": n, "source_ts_ms": now_ms,
        "routed_at_ms": now_ms, "recipient_id": user, "integration_id": None, "attempt": 0,
        "user_id": user, "notification_type": "form.response_received",
        "title": f"Form response {n}", "body": f"Alice & Bob answered form {n}",
        "link": f"/forms/{n}", "data": {"n": str(n)},
    }  # fmt: skip


def produce(bootstrap: str, rate: int, seconds: float, users: int) -> None:
    from confluent_kafka import Producer
    from streams.kafka.codec import TopicCodecs
    from streams.settings import Settings
    from streams.topics import DELIVER, Destination

    topic = DELIVER[Destination.INAPP].deliver
    codec = TopicCodecs.from_settings(Settings())[topic]
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    producer.list_topics(topic.name, timeout=10)  # metadata first: not inside the timing
    acked = [0]

    def on_ack(err: Any, _msg: Any) -> None:
        if err is None:
            acked[0] += 1

    rng = random.Random(7)
    total = int(rate * seconds)
    start = time.monotonic()
    for n in range(total):
        pause = start + n / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        user = user_id(rng.randrange(users))
        value = record(user, n, int(time.time() * 1000))
        producer.produce(topic.name, codec.encode(value), user.encode(), on_delivery=on_ack)
        producer.poll(0)
    elapsed = time.monotonic() - start
    producer.flush(30)
    _say({"sent": total, "acked": acked[0], "seconds": round(elapsed, 2)})


def main(argv: list[str]) -> None:
    raise_nofile()
    if argv[0] == "clients":
        asyncio.run(_clients(argv[1], int(argv[2]), int(argv[3]), argv[4]))
    elif argv[0] == "produce":
        produce(argv[1], int(argv[2]), float(argv[3]), int(argv[4]))
    else:
        raise SystemExit(f"unknown part {argv[0]!r}: clients or produce")


if __name__ == "__main__":
    main(sys.argv[1:])
