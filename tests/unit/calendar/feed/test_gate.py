"""The feed's request gate (connectors/calendar/feed/gate.py) over httpx's MockTransport:
every request of an account's client takes its slots and gives them back once answered; a
wait past `max_wait_s` sends nothing; a provider's throttle is charged to the account."""

from __future__ import annotations

import asyncio
import gzip

import httpx
import pytest
from connectors.calendar.feed.gate import Deferred, RequestGate
from connectors.calendar.feed_errors import Throttled
from streams.logic.calendar.limits import GOOGLE_PROJECT, GOOGLE_USER, Limit, Limiter

T0 = 1_900_000_000.0  # a large clock: a float's last bit matters


class Hand:
    def __init__(self) -> None:
        self.now = T0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def gate_of(hand: Hand, user: Limit, *, max_wait_s: float = 10.0) -> RequestGate:
    limiter = Limiter({GOOGLE_USER: user, GOOGLE_PROJECT: Limit(1000.0, 1000)})
    return RequestGate(limiter, clock=hand, sleep=hand.sleep, max_wait_s=max_wait_s)


def mock_http(seen: list[httpx.Request]) -> httpx.AsyncClient:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"items": []})

    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


async def test_requests_past_the_burst_wait_for_the_rate() -> None:
    hand, seen = Hand(), []
    gate = gate_of(hand, Limit(1 / 3, 2))
    api = gate.client(mock_http(seen), "google", "u1")
    for _ in range(4):
        assert (await api.get("https://calendar.example/events")).json() == {"items": []}
    assert len(seen) == 4
    assert hand.now - T0 == pytest.approx(6.0, abs=0.01)  # two waits of 3 s
    assert gate.waits == len(hand.slept) >= 2


async def test_the_slots_are_given_back_once_answered() -> None:
    hand, seen = Hand(), []
    gate = gate_of(hand, Limit(10.0, 10))
    api = gate.client(mock_http(seen), "google", "u1")
    await api.get("https://calendar.example/events")
    gate.limiter.sweep(T0 + 60)
    assert len(gate.limiter) == 0  # nothing held in flight


async def test_a_wait_past_max_wait_sends_nothing() -> None:
    hand, seen = Hand(), []
    gate = gate_of(hand, Limit(1 / 60, 1), max_wait_s=10)
    api = gate.client(mock_http(seen), "google", "u1")
    await api.get("https://calendar.example/events")
    with pytest.raises(Deferred) as put_off:
        await api.get("https://calendar.example/events")
    assert (len(seen), put_off.value.retry_after_s) == (1, pytest.approx(60.0))


async def test_a_provider_throttle_holds_back_that_account_only() -> None:
    hand, seen = Hand(), []
    gate = gate_of(hand, Limit(10.0, 10), max_wait_s=10)
    charged = gate.throttled("google", "u1", Throttled("google.rateLimitExceeded", 30.0))
    assert charged.retry_after_s == 30.0
    with pytest.raises(Deferred):
        await gate.client(mock_http(seen), "google", "u1").get("https://calendar.example/e")
    await gate.client(mock_http(seen), "google", "u2").get("https://calendar.example/e")
    assert len(seen) == 1


async def test_our_own_deferral_is_not_charged_as_a_throttle() -> None:
    hand = Hand()
    gate = gate_of(hand, Limit(10.0, 10))
    ours = Deferred("calendar feed: google_user limit", 12.0)
    assert gate.throttled("google", "u1", ours) is ours
    assert gate.limiter.blocked_for([(GOOGLE_USER, "u1")], hand.now) == 0.0


async def test_a_gzipped_answer_is_read_once_and_decoded() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        body = gzip.compress(b'{"items": [1]}')
        return httpx.Response(200, content=body, headers={"Content-Encoding": "gzip"})

    gate = gate_of(Hand(), Limit(10.0, 10))
    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    got = await gate.client(http, "google", "u1").get("https://calendar.example/events")
    assert got.json() == {"items": [1]}


async def test_the_injected_clients_headers_and_timeout_are_kept() -> None:
    seen: list[httpx.Request] = []
    http = mock_http(seen)
    http.headers["User-Agent"] = "wedsync-calendar-feed"
    http.timeout = httpx.Timeout(3.0)
    await gate_of(Hand(), Limit(10.0, 10)).client(http, "graph", "m1").get("https://g.example/")
    assert seen[0].headers["User-Agent"] == "wedsync-calendar-feed"
    assert seen[0].extensions["timeout"]["read"] == 3.0
