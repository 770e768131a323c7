"""Resume: a reconnecting client gets what it missed, in order, once; or is told it cannot."""

from __future__ import annotations

import time

import pytest
from streams.dev.broker import free_port

from tests.integration.inapp.support import (
    Client,
    GatewayProcess,
    GatewayThread,
    Notifier,
    gateway,
    token,
)

pytestmark = pytest.mark.integration


def held_by(g: GatewayThread, user: str, n: int, timeout: float = 10.0) -> None:
    """Wait until the gateway holds `n` notifications of `user` for resume."""
    deadline = time.monotonic() + timeout
    while len(g.call(lambda: g.gateway.history.resume(user, None).entries)) < n:
        assert time.monotonic() < deadline, f"gateway never held {n} notifications of {user}"
        time.sleep(0.05)


def position(frame: dict) -> dict:  # type: ignore[type-arg]
    return {"epoch": frame["epoch"], "offset": frame["offset"]}


def test_reconnect_gets_the_missed_notifications_in_order(bootstrap: str) -> None:
    notifier = Notifier(bootstrap)
    with gateway(bootstrap) as g:
        c = Client(g.url, token("res-gap"))
        c.hello()
        notifier.send("res-gap", 0)
        last = c.notifications(1)[-1]
        c.close()
        missed = [notifier.send("res-gap", n)["delivery_id"] for n in range(1, 6)]
        again = Client(g.url, token("res-gap"), since=position(last))
        # what the gateway had read is replayed (`missed`), what it had not follows live
        assert again.hello()["recovered"] is True
        got = again.notifications(5)
        assert [f["id"] for f in got] == missed
        assert [f["offset"] for f in got] == sorted(f["offset"] for f in got)
        notifier.send("res-gap", 6)
        assert again.notifications(1)[0]["title"] == "Form response 6"


def test_a_position_older_than_the_history_is_answered_recovered_false(bootstrap: str) -> None:
    notifier = Notifier(bootstrap)
    with gateway(bootstrap, history_per_user=3) as g:
        c = Client(g.url, token("res-old"))
        c.hello()
        notifier.send("res-old", 0)
        last = c.notifications(1)[-1]
        c.close()
        for n in range(1, 6):
            notifier.send("res-old", n)
        held_by(g, "res-old", 3)  # the gateway read them, and dropped the oldest
        again = Client(g.url, token("res-old"), since=position(last))
        hello = again.hello()
        assert hello["recovered"] is False
        assert [f["title"] for f in again.notifications(hello["missed"])] == [
            "Form response 3", "Form response 4", "Form response 5"]  # fmt: skip


def test_a_position_from_another_epoch_is_answered_recovered_false(bootstrap: str) -> None:
    with gateway(bootstrap) as g:
        c = Client(g.url, token("res-epoch"), since={"epoch": "some-other-topic:0", "offset": 3})
        assert c.hello()["recovered"] is False


def test_resume_across_a_gateway_restart_has_no_gap_and_no_duplicate(bootstrap: str) -> None:
    notifier = Notifier(bootstrap)
    port = free_port()
    first = GatewayProcess(bootstrap, port)
    try:
        c = Client(first.url, token("res-restart"))
        c.hello()
        for n in range(3):
            notifier.send("res-restart", n)
        seen = c.notifications(3)
        assert first.terminate() == 0
        for n in range(3, 6):
            notifier.send("res-restart", n)
    finally:
        if first.proc.poll() is None:
            first.kill()
    second = GatewayProcess(bootstrap, port)
    try:
        again = Client(second.url, token("res-restart"), since=position(seen[-1]))
        hello = again.hello()
        got = again.notifications(hello["missed"])
        assert hello["recovered"] is True
        assert [f["title"] for f in got] == [f"Form response {n}" for n in range(3, 6)]
        assert not {f["id"] for f in got} & {f["id"] for f in seen}
    finally:
        second.kill()


def test_two_gateways_serve_one_user_and_positions_carry_over(bootstrap: str) -> None:
    notifier = Notifier(bootstrap)
    with gateway(bootstrap) as a, gateway(bootstrap) as b:
        phone, laptop = Client(a.url, token("res-two")), Client(b.url, token("res-two"))
        phone.hello()
        laptop.hello()
        notifier.send("res-two", 0)
        on_a, on_b = phone.notifications(1)[0], laptop.notifications(1)[0]
        assert (on_a["id"], on_a["offset"], on_a["epoch"]) == (
            on_b["id"], on_b["offset"], on_b["epoch"])  # fmt: skip
        phone.close()
        notifier.send("res-two", 1)
        laptop.notifications(1)
        moved = Client(b.url, token("res-two"), since=position(on_a))
        hello = moved.hello()
        assert (hello["recovered"], moved.notifications(1)[0]["title"]) == (
            True, "Form response 1")  # fmt: skip
