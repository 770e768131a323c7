"""Tokens on a live gateway: refused with the right close code, refreshed in-band."""

from __future__ import annotations

import time
from collections.abc import Iterator

import jwt
import pytest
from connectors.sinks.inapp import wire

from tests.integration.inapp.support import (
    SECRET,
    Client,
    GatewayThread,
    Notifier,
    gateway,
    token,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gw(bootstrap: str) -> Iterator[GatewayThread]:
    with gateway(bootstrap) as g:
        yield g


def test_expired_token_is_closed_with_4003(gw: GatewayThread) -> None:
    assert Client(gw.url, token("auth-exp", ttl=-30)).close_code() == wire.CLOSE_EXPIRED


def test_wrong_audience_is_closed_with_4001(gw: GatewayThread) -> None:
    assert Client(gw.url, token("auth-aud", aud="other")).close_code() == wire.CLOSE_BAD_TOKEN


def test_token_signed_with_another_secret_is_closed_with_4001(gw: GatewayThread) -> None:
    claims = {"sub": "auth-x", "exp": time.time() + 60, "aud": "wedsync-inapp", "iss": "wedsync"}
    forged = jwt.encode(claims, "not-the-secret-but-just-as-long!!", "HS256")
    assert Client(gw.url, forged).close_code() == wire.CLOSE_BAD_TOKEN


def test_refreshed_token_keeps_the_connection_past_the_first_expiry(
    gw: GatewayThread, bootstrap: str
) -> None:
    c = Client(gw.url, token("auth-refresh", ttl=1.5))
    c.hello()
    c.send({"type": "refresh", "token": token("auth-refresh", ttl=300)})
    assert c.until(lambda f: f["type"] == "refreshed")["expires_in"] > 200
    time.sleep(2.5)  # past the first token's exp + grace
    Notifier(bootstrap).send("auth-refresh", 1)
    assert c.notifications(1)[0]["title"] == "Form response 1"


def test_unrefreshed_token_is_closed_with_4003_after_the_grace(gw: GatewayThread) -> None:
    c = Client(gw.url, token("auth-lapse", ttl=1.0))
    c.hello()
    started = time.monotonic()
    assert c.close_code(timeout=10) == wire.CLOSE_EXPIRED
    assert time.monotonic() - started < 5


def test_refresh_for_another_user_is_closed_with_4001(gw: GatewayThread) -> None:
    c = Client(gw.url, token("auth-me"))
    c.hello()
    c.send({"type": "refresh", "token": token("auth-someone-else")})
    assert c.close_code() == wire.CLOSE_BAD_TOKEN


def test_secret_is_never_echoed_in_a_close_reason(gw: GatewayThread) -> None:
    from websockets.exceptions import ConnectionClosed

    c = Client(gw.url, token("auth-echo", aud="other"))
    with pytest.raises(ConnectionClosed) as info:
        c.recv()
    assert info.value.rcvd is not None
    assert SECRET not in info.value.rcvd.reason and "eyJ" not in info.value.rcvd.reason
