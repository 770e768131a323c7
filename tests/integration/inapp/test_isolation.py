"""A client is never sent another user's notification; bad input gets a close code."""

from __future__ import annotations

import pytest
from connectors.sinks.inapp import wire

from tests.integration.inapp.support import Client, Notifier, gateway, metric, token

pytestmark = pytest.mark.integration


def test_a_user_gets_only_their_own_notifications(bootstrap: str) -> None:
    with gateway(bootstrap) as g:
        alice, bob = Client(g.url, token("iso-alice")), Client(g.url, token("iso-bob"))
        alice.hello()
        bob.hello()
        notifier = Notifier(bootstrap)
        for n in range(5):
            notifier.send("iso-alice", n)
        notifier.send("iso-bob", 99)
        assert [f["title"] for f in bob.notifications(1)] == ["Form response 99"]
        assert len(alice.notifications(5)) == 5
        with pytest.raises(TimeoutError):
            bob.until(lambda f: f["type"] == "notification", timeout=1.0)


def test_marking_another_users_notification_is_refused(bootstrap: str) -> None:
    with gateway(bootstrap) as g:
        alice, eve = Client(g.url, token("iso-a2")), Client(g.url, token("iso-eve"))
        alice.hello()
        eve.hello()
        sent = Notifier(bootstrap).send("iso-a2", 1)
        alice.notifications(1)
        eve.send({"type": "read", "ids": [sent["delivery_id"]]})
        assert "not notifications of yours" in eve.until(lambda f: f["type"] == "error")["reason"]
        with pytest.raises(TimeoutError):
            alice.until(lambda f: f["type"] == "state", timeout=1.5)


def test_a_first_frame_that_is_not_json_closes_with_protocol_error(bootstrap: str) -> None:
    with gateway(bootstrap) as g:
        c = Client.__new__(Client)
        from websockets.sync.client import connect

        c.ws, c.frames = connect(g.url), []
        c.ws.send("hello?")
        assert c.close_code() == wire.CLOSE_PROTOCOL


def test_a_bad_frame_later_gets_an_error_and_the_connection_stays(bootstrap: str) -> None:
    with gateway(bootstrap) as g:
        c = Client(g.url, token("iso-bad"))
        c.hello()
        c.ws.send("{not json")
        assert c.until(lambda f: f["type"] == "error")["reason"] == "frame is not JSON"
        c.send({"type": "ping"})
        assert c.until(lambda f: True)["type"] == "pong"


def test_metrics_count_connections_and_frames(bootstrap: str) -> None:
    with gateway(bootstrap) as g:
        c = Client(g.url, token("iso-metrics"))
        c.hello()
        Notifier(bootstrap).send("iso-metrics", 1)
        c.notifications(1)
        assert metric("wedsync_inapp_connections") >= 1
        assert metric("wedsync_inapp_fanout_latency_seconds_count") >= 1
