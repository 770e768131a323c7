"""Seen/read marks go to Kafka as delivery results and reach the user's other devices."""

from __future__ import annotations

import time

import pytest
from streams.kafka.codec import TopicCodecs
from streams.kafka.replay import read_topic
from streams.settings import Settings
from streams.topics import DELIVERY_RESULTS

from tests.integration.inapp.support import Client, Notifier, gateway, token

pytestmark = pytest.mark.integration


def results_for(bootstrap: str, delivery_id: str, n: int) -> list[dict]:  # type: ignore[type-arg]
    codec = TopicCodecs.from_settings(Settings())[DELIVERY_RESULTS]
    deadline = time.monotonic() + 15
    while True:
        found: list[dict] = []  # type: ignore[type-arg]

        def keep(msg, found=found) -> None:  # type: ignore[no-untyped-def]
            rec = codec.decode(msg.value())
            if rec["delivery_id"] == delivery_id:
                found.append(rec)

        read_topic(bootstrap, DELIVERY_RESULTS, keep, timeout=10)
        if len(found) >= n or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_read_on_one_device_shows_on_the_other(bootstrap: str) -> None:
    with gateway(bootstrap) as a, gateway(bootstrap) as b:
        phone, laptop = Client(a.url, token("rs-user")), Client(b.url, token("rs-user"))
        phone.hello()
        laptop.hello()
        sent = Notifier(bootstrap).send("rs-user", 1)
        phone.notifications(1)
        laptop.notifications(1)
        phone.send({"type": "read", "ids": [sent["delivery_id"]]})
        state = laptop.until(lambda f: f["type"] == "state")
        assert state == {"type": "state", "id": sent["delivery_id"], "seen": True, "read": True}


def test_seen_and_read_are_delivery_results_on_the_ledger(bootstrap: str) -> None:
    with gateway(bootstrap) as g:
        c = Client(g.url, token("rs-ledger"))
        c.hello()
        sent = Notifier(bootstrap).send("rs-ledger", 2)
        got = c.notifications(1)[0]
        c.send({"type": "seen", "ids": [got["id"]]})
        c.until(lambda f: f["type"] == "state" and f["seen"])
        c.send({"type": "read", "ids": [got["id"]]})
        c.until(lambda f: f["type"] == "state" and f["read"])
        results = results_for(bootstrap, sent["delivery_id"], 2)
        assert [r["outcome"] for r in results] == ["seen", "read"]
        first = results[0]
        assert (first["destination"], first["target"], first["event_id"]) == (
            "inapp", "inapp:rs-ledger", sent["event_id"])  # fmt: skip
        assert first["source_offset"] == got["offset"] and first["latency_ms"] >= 0


def test_a_reconnecting_device_sees_what_was_read_meanwhile(bootstrap: str) -> None:
    with gateway(bootstrap) as g:
        phone = Client(g.url, token("rs-later"))
        phone.hello()
        sent = Notifier(bootstrap).send("rs-later", 3)
        phone.notifications(1)
        phone.send({"type": "read", "ids": [sent["delivery_id"]]})
        phone.until(lambda f: f["type"] == "state")
        laptop = Client(g.url, token("rs-later"))
        laptop.hello()
        assert laptop.notifications(1)[0]["read"] is True


def test_read_state_survives_a_gateway_restart(bootstrap: str) -> None:
    with gateway(bootstrap) as g:
        phone = Client(g.url, token("rs-restart"))
        phone.hello()
        sent = Notifier(bootstrap).send("rs-restart", 4)
        phone.notifications(1)
        phone.send({"type": "read", "ids": [sent["delivery_id"]]})
        phone.until(lambda f: f["type"] == "state")
    with gateway(bootstrap) as fresh:
        laptop = Client(fresh.url, token("rs-restart"))
        laptop.hello()
        assert laptop.notifications(1)[0]["read"] is True


def test_marking_an_already_read_notification_is_confirmed(bootstrap: str) -> None:
    """A client waiting for the confirmation of a mark must get one, also when another
    device marked it first."""
    with gateway(bootstrap) as g:
        c = Client(g.url, token("rs-again"))
        c.hello()
        sent = Notifier(bootstrap).send("rs-again", 5)
        c.notifications(1)
        c.send({"type": "read", "ids": [sent["delivery_id"]]})
        c.until(lambda f: f["type"] == "state" and f["read"])
        c.send({"type": "read", "ids": [sent["delivery_id"]]})
        again = c.until(lambda f: f["type"] in ("state", "error"), timeout=5)
        assert again == {"type": "state", "id": sent["delivery_id"], "seen": True, "read": True}
