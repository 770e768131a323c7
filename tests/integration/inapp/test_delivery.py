"""Notifications reach every open connection of their user, and only theirs."""

from __future__ import annotations

import pytest

from tests.integration.inapp.support import Client, Notifier, gateway, token

pytestmark = pytest.mark.integration


def test_a_notification_reaches_every_connection_of_its_user(bootstrap: str) -> None:
    with gateway(bootstrap) as g:
        tabs = [Client(g.url, token("u-many")) for _ in range(3)]
        for t in tabs:
            t.hello()
        sent = Notifier(bootstrap).send("u-many", 1)
        got = [t.notifications(1)[0] for t in tabs]
        assert {f["id"] for f in got} == {sent["delivery_id"]}
        assert got[0]["title"] == sent["title"] and got[0]["seen"] is False
