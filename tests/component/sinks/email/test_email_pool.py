"""The email connector keeps SMTP sessions to the relay open and reuses them
(connectors.sinks.email.pool), against a real aiosmtpd server (SmtpCapture) on loopback:
one session serves many messages, at most `pool_size` are open, a session is closed after
`messages_per_connection` messages or a failed transaction, and a session the relay dropped
while idle is reopened without failing the message."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from connectors.sinks.answer import Verdict
from connectors.sinks.base import DeliveryContext
from connectors.sinks.credentials import MemoryCredentialStore
from connectors.sinks.email.config import EmailConfig
from connectors.sinks.email.sink import EmailConnector
from connectors.sinks.outbound import OutboundPolicy
from streams.dev.fakes.email import SmtpCapture


@pytest.fixture
def capture() -> Iterator[SmtpCapture]:
    server = SmtpCapture().start()
    yield server
    server.stop()


def connector(port: int, **settings: Any) -> EmailConnector:
    config = EmailConfig(smtp_host="127.0.0.1", smtp_port=port, timeout_s=5,
                         from_address="notify@wedsync.example", **settings)  # fmt: skip
    return EmailConnector(OutboundPolicy.loopback_for_tests(port), config)


def record(n: int) -> dict[str, Any]:
    return {"delivery_id": f"dlv-{n}", "recipient_id": "sup-7", "to_address": "ann@example.com",
            "to_name": "Ann", "template": "form_response", "subject": f"Message {n}",
            "variables": {"recipient_name": "Ann", "client_name": "Bea",
                          "form_name": "Menu"}}  # fmt: skip


def ctx(n: int) -> DeliveryContext:
    return DeliveryContext(MemoryCredentialStore(), f"dlv-{n}", attempt=0)


async def send(email: EmailConnector, *numbers: int) -> list[Verdict]:
    return [(await email.deliver(record(n), ctx(n))).verdict for n in numbers]


async def test_one_session_serves_many_messages(capture: SmtpCapture) -> None:
    email = connector(capture.port)
    try:
        assert await send(email, *range(10)) == [Verdict.OK] * 10
        assert email.pool.opened == 1
        assert len(capture.messages) == 10
    finally:
        await email.aclose()


async def test_concurrent_deliveries_open_at_most_pool_size_sessions(
    capture: SmtpCapture,
) -> None:
    email = connector(capture.port, pool_size=3)
    try:
        answers = await asyncio.gather(*(email.deliver(record(n), ctx(n)) for n in range(20)))
        assert [a.verdict for a in answers] == [Verdict.OK] * 20
        assert email.pool.opened <= 3
    finally:
        await email.aclose()


async def test_a_session_is_closed_after_its_messages(capture: SmtpCapture) -> None:
    email = connector(capture.port, messages_per_connection=3)
    try:
        await send(email, *range(7))
        assert email.pool.opened == 3
    finally:
        await email.aclose()


async def test_a_failed_transaction_closes_its_session(capture: SmtpCapture) -> None:
    email = connector(capture.port)
    try:
        capture.reject_next("450 4.7.1 Greylisted")
        assert await send(email, 1, 2) == [Verdict.RETRY, Verdict.OK]
        assert email.pool.opened == 2
    finally:
        await email.aclose()


async def test_a_session_the_relay_dropped_is_reopened_without_failing_the_message() -> None:
    first = SmtpCapture().start()
    port = first.port
    email = connector(port)
    try:
        assert await send(email, 1) == [Verdict.OK]
        first.stop()  # the relay restarts: every session it had is gone
        second = SmtpCapture(port=port).start()
        try:
            assert await send(email, 2) == [Verdict.OK]
            assert email.pool.opened == 2 and len(second.messages) == 1
        finally:
            second.stop()
    finally:
        await email.aclose()


async def test_an_idle_session_is_closed_and_a_new_one_opened(capture: SmtpCapture) -> None:
    email = connector(capture.port, idle_close_s=30)
    now = [1000.0]
    email.pool.clock = lambda: now[0]
    try:
        await send(email, 1)
        now[0] += 31  # idle past idle_close_s
        await send(email, 2)
        assert email.pool.opened == 2
    finally:
        await email.aclose()


async def test_a_delivery_cancelled_mid_transaction_gives_its_slot_back() -> None:
    import threading

    first = threading.Event()

    def slow_once(_: object) -> None:  # the relay holds its DATA reply for the first message
        if not first.is_set():
            first.set()
            threading.Event().wait(0.5)

    server = SmtpCapture(on_message=slow_once).start()
    email = connector(server.port, pool_size=1)
    try:
        with pytest.raises(TimeoutError):  # the call's deadline, mid-DATA
            await asyncio.wait_for(email.deliver(record(1), ctx(1)), 0.2)
        answer = await asyncio.wait_for(email.deliver(record(2), ctx(2)), 5)
        assert answer.verdict is Verdict.OK
    finally:
        await email.aclose()
        server.stop()
