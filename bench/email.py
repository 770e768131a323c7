"""Email at the speed of the relay: the email connector against the SMTP capture server
(`wedsync fake smtp`, its own process), beside the capture server's own ceiling.

- baseline: a plain aiosmtplib loop, `CONCURRENCY` sessions kept open, sending `MESSAGES`
  times the very message the connector builds (composed once) as fast as the server takes
  it: what the capture server itself can do;
- ours: `EmailConnector.deliver` (render, build, pooled session, audit line) with
  `CONCURRENCY` deliveries in flight and a pool of as many sessions;
- one session per message: the same connector with `messages_per_connection=1`, as the sink
  was before sessions were reused.

Each phase runs in its own process (no GIL shared with the server). Target (issue 19):
ours at least 0.7x the baseline.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from streams.settings import REPO_ROOT

from bench.servers import wait_listening

MESSAGES = 2000
CONCURRENCY = 8


def baseline_main(port: int, messages: int, concurrency: int) -> None:
    import asyncio

    import aiosmtplib
    from connectors.sinks.email.config import EmailConfig
    from connectors.sinks.email.sink import EmailConnector
    from connectors.sinks.outbound import OutboundPolicy

    # the very message our connector sends (text and HTML parts), built once: the server's
    # and the SMTP client's cost alone
    config = EmailConfig(smtp_host="127.0.0.1", smtp_port=port,
                         from_address="notify@wedsync.example")  # fmt: skip
    composer = EmailConnector(OutboundPolicy.loopback_for_tests(port), config)
    raw = composer.compose(_record(0), "k0").data

    async def main() -> float:
        left = iter(range(messages))

        async def session() -> None:
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, local_hostname="bench")
            await client.connect()
            for _ in left:
                await client.sendmail("notify@wedsync.example", ["ann@example.com"], raw)
            await client.quit()

        started = time.perf_counter()
        await asyncio.gather(*(session() for _ in range(concurrency)))
        return messages / (time.perf_counter() - started)

    print(json.dumps({"rate": asyncio.run(main())}))


def sink_main(port: int, messages: int, concurrency: int, per_connection: int) -> None:
    import asyncio

    from connectors.sinks.base import DeliveryContext
    from connectors.sinks.credentials import MemoryCredentialStore
    from connectors.sinks.email.config import EmailConfig
    from connectors.sinks.email.sink import EmailConnector
    from connectors.sinks.outbound import OutboundPolicy

    config = EmailConfig(smtp_host="127.0.0.1", smtp_port=port, pool_size=concurrency,
                         messages_per_connection=per_connection,
                         from_address="notify@wedsync.example")  # fmt: skip
    email = EmailConnector(OutboundPolicy.loopback_for_tests(port), config)
    store = MemoryCredentialStore()

    async def main() -> float:
        left = iter(range(messages))

        async def worker() -> None:
            for n in left:
                answer = await email.deliver(_record(n), DeliveryContext(store, f"k{n}", 0))
                assert answer.ok, answer

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        rate = messages / (time.perf_counter() - started)
        await email.aclose()
        return rate

    import logging

    logging.getLogger("wedsync.outbound").setLevel(logging.WARNING)  # one audit line per call
    print(json.dumps({"rate": asyncio.run(main()), "sessions": email.pool.opened}))


def _record(n: int) -> dict[str, Any]:
    return {"delivery_id": f"dlv-{n}", "recipient_id": "sup-7", "to_address": "ann@example.com",
            "to_name": "Ann", "template": "form_response", "subject": f"Message {n}",
            "variables": {"recipient_name": "Ann", "client_name": "Bea",
                          "form_name": "Menu"}}  # fmt: skip


def _child(code: str, *args: Any) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=REPO_ROOT,
                         capture_output=True, timeout=600, check=False)  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"bench child failed: {out.stderr.decode()[-2000:]}")
    return dict(json.loads(out.stdout.decode().strip().splitlines()[-1]))


def run() -> list[str]:
    from streams.dev.broker import free_port

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "streams.app.cli", "fake", "smtp", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    lines = [f"email: {MESSAGES} messages, {CONCURRENCY} in flight, to the SMTP capture "
             "server in its own process"]  # fmt: skip
    try:
        wait_listening(port)
        args = "(*map(int, sys.argv[1:]))"
        base = _child(f"import sys; from bench.email import baseline_main; baseline_main{args}",
                      port, MESSAGES, CONCURRENCY)  # fmt: skip
        code = f"import sys; from bench.email import sink_main; sink_main{args}"
        ours = _child(code, port, MESSAGES, CONCURRENCY, 100)
        single = _child(code, port, MESSAGES // 4, CONCURRENCY, 1)
    finally:
        server.terminate()
        server.wait(10)
    lines += [
        f"  capture server alone (aiosmtplib, same message)   {base['rate']:>8,.0f} msg/s",
        f"  email connector, sessions reused ({ours['sessions']} opened)   "
        f"{ours['rate']:>8,.0f} msg/s  ratio {ours['rate'] / base['rate']:.2f} (target >= 0.70)",
        f"  email connector, one session per message        {single['rate']:>8,.0f} msg/s  "
        f"ratio {single['rate'] / base['rate']:.2f}",
    ]
    return lines
