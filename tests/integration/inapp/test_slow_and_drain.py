"""A client that cannot keep up is dropped with 4108 without holding up others; SIGTERM drains
with 4200 and a draining gateway refuses new connections with 4101."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest
from connectors.sinks.inapp import wire
from streams.dev.broker import free_port

from tests.integration.inapp.support import (
    Client,
    GatewayProcess,
    Notifier,
    close_frame,
    gateway,
    metric,
    raw_connect,
    read_to_eof,
    token,
)

pytestmark = pytest.mark.integration
BIG = "x" * 8000  # one notification of about 8 kB


def test_a_slow_client_is_closed_with_4108_and_others_keep_up(bootstrap: str) -> None:
    with gateway(bootstrap, queue_bytes=64 * 1024, ping_interval_s=60, ping_timeout_s=60) as g:
        slow = raw_connect(g.url, token("slow-user"), rcvbuf=4096)
        fast = Client(g.url, token("fast-user"))
        fast.hello()
        notifier = Notifier(bootstrap)
        for n in range(120):  # ~1 MB for the slow one, far over its 64 KiB queue
            notifier.send("slow-user", n, body=BIG)
            if n % 20 == 0:
                notifier.send("fast-user", n)
        assert len(fast.notifications(6, timeout=10)) == 6
        deadline = time.monotonic() + 10
        while metric("wedsync_inapp_queue_drops_total") < 1:
            assert time.monotonic() < deadline, "the slow client was never dropped"
            time.sleep(0.1)
        assert close_frame(wire.CLOSE_SLOW, "slow") in read_to_eof(slow)
        assert g.call(lambda: "slow-user" not in g.gateway.hub.by_user)


def test_sigterm_closes_connections_with_reconnect_now(bootstrap: str) -> None:
    proc = GatewayProcess(bootstrap, free_port())
    try:
        clients = [Client(proc.url, token(f"drain-{i}")) for i in range(3)]
        for c in clients:
            c.hello()
        proc.proc.send_signal(15)
        assert [c.close_code() for c in clients] == [wire.CLOSE_RESTART] * 3
        assert proc.proc.wait(20) == 0
    finally:
        if proc.proc.poll() is None:
            proc.kill()


def test_a_draining_gateway_refuses_new_connections_and_fails_health(bootstrap: str) -> None:
    with gateway(bootstrap) as g:
        g.call(lambda: setattr(g.gateway, "draining", True))
        assert Client(g.url, token("drain-late")).close_code() == wire.CLOSE_DRAINING
        health = g.url.replace("ws://", "http://").replace("/ws", "/healthz")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(health, timeout=5)
        assert info.value.code == 503
        g.call(lambda: setattr(g.gateway, "draining", False))


def test_over_the_connection_limit_the_client_is_told_to_back_off(bootstrap: str) -> None:
    with gateway(bootstrap, max_connections=1) as g:
        Client(g.url, token("limit-1")).hello()
        assert Client(g.url, token("limit-2")).close_code() == wire.CLOSE_OVERLOADED
