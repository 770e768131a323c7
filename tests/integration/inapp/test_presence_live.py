"""Presence on live gateways: join/leave per user across devices, dead connections leave within
the ping bound, and a killed gateway leaves no ghosts."""

from __future__ import annotations

import time

import pytest
from streams.dev.broker import free_port

from tests.integration.inapp.support import (
    Client,
    GatewayProcess,
    gateway,
    raw_connect,
    token,
)

pytestmark = pytest.mark.integration


def presence(c: Client, event: str, user: str, timeout: float = 10.0) -> float:
    """Wait for the presence event; how long it took."""
    started = time.monotonic()
    wanted = {"type": "presence", "event": event, "user": user}
    c.until(lambda f: {k: f.get(k) for k in wanted} == wanted, timeout)  # and its display name
    return time.monotonic() - started


def test_join_and_leave_are_per_user_across_devices(bootstrap: str) -> None:
    with gateway(bootstrap) as g:
        boss = Client(g.url, token("pr-boss", org="org-p1"))
        boss.hello()
        tab1 = Client(g.url, token("pr-anna", org="org-p1"))
        tab1.hello()
        presence(boss, "join", "pr-anna")
        tab2 = Client(g.url, token("pr-anna", org="org-p1"))
        assert "pr-anna" in tab2.hello()["presence"]
        tab1.close()
        with pytest.raises(TimeoutError):  # still online on the second tab
            boss.until(lambda f: f.get("event") == "leave", timeout=1.5)
        tab2.close()
        presence(boss, "leave", "pr-anna")


def test_presence_is_scoped_to_the_organisation(bootstrap: str) -> None:
    with gateway(bootstrap) as g:
        outsider = Client(g.url, token("pr-out", org="org-p2"))
        outsider.hello()
        Client(g.url, token("pr-in", org="org-p3")).hello()
        with pytest.raises(TimeoutError):
            outsider.until(lambda f: f.get("user") == "pr-in", timeout=1.5)


def test_a_dead_connection_leaves_within_the_ping_bound(bootstrap: str) -> None:
    with gateway(bootstrap) as g:  # ping every 1 s, 1 s to answer
        boss = Client(g.url, token("pr-boss2", org="org-p4"))
        boss.hello()
        frozen = raw_connect(g.url, token("pr-frozen", org="org-p4"))
        presence(boss, "join", "pr-frozen")
        took = presence(boss, "leave", "pr-frozen", timeout=10)
        assert took < 5  # ping interval + timeout + the presence round trip
        frozen.close()


def test_a_killed_gateway_leaves_no_ghosts(bootstrap: str) -> None:
    doomed = GatewayProcess(bootstrap, free_port())
    with gateway(bootstrap) as survivor:
        boss = Client(survivor.url, token("pr-boss3", org="org-p5"))
        boss.hello()
        victim = Client(doomed.url, token("pr-victim", org="org-p5"))
        victim.hello()
        presence(boss, "join", "pr-victim")
        doomed.kill()  # no goodbye, no leave: only its heartbeat stops
        took = presence(boss, "leave", "pr-victim", timeout=10)
        assert took < 5  # TTL 2 s + heartbeat period
        late = Client(survivor.url, token("pr-late", org="org-p5"))
        assert "pr-victim" not in late.hello()["presence"]


def test_a_gateway_started_after_a_crash_shows_no_ghosts(bootstrap: str) -> None:
    doomed = GatewayProcess(bootstrap, free_port())
    victim = Client(doomed.url, token("pr-ghost", org="org-p6"))
    victim.hello()
    time.sleep(1.0)  # its join and heartbeats are on the presence topic
    doomed.kill()
    with gateway(bootstrap) as fresh:
        deadline = time.monotonic() + 5
        while fresh.call(lambda: fresh.gateway.presence.is_online("pr-ghost")):
            assert time.monotonic() < deadline, "the killed gateway's user is still online"
            time.sleep(0.1)
        watcher = Client(fresh.url, token("pr-watch", org="org-p6"))
        assert "pr-ghost" not in watcher.hello()["presence"]


def test_a_stopped_gateway_says_goodbye_at_once(bootstrap: str) -> None:
    leaving = GatewayProcess(bootstrap, free_port(), presence_ttl_s=60, presence_heartbeat_s=1)
    with gateway(bootstrap, presence_ttl_s=60, presence_heartbeat_s=1) as survivor:
        boss = Client(survivor.url, token("pr-boss4", org="org-p7"))
        boss.hello()
        Client(leaving.url, token("pr-bye", org="org-p7")).hello()
        presence(boss, "join", "pr-bye")
        assert leaving.terminate() == 0
        assert presence(boss, "leave", "pr-bye", timeout=10) < 5  # well under the 60 s TTL
