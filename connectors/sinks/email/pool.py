"""SMTP sessions to the relay, reused: one connection serves many messages.

An SMTP exchange costs six round trips and, with TLS, a handshake; a session kept open
costs one MAIL/RCPT/DATA round per message. `RelayPool` keeps up to `size` sessions: a
delivery takes an idle one (or opens one, or waits while `size` are busy), sends, and gives
it back when the relay accepted the message. A session is closed instead when its
transaction failed in any way (its state is then unknown), after `max_messages`
messages, or when it sat idle longer than `idle_close_s` (relays drop idle sessions).
Opening goes through the caller's `open_session`, which checks the relay's address against
the outbound policy on every connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiosmtplib


@dataclass
class Session:
    client: aiosmtplib.SMTP
    sent: int = 0
    idle_since: float = field(default_factory=time.monotonic)
    reused: bool = False  # taken from the pool rather than opened for this delivery


class RelayPool:
    def __init__(
        self,
        open_session: Callable[[], Awaitable[aiosmtplib.SMTP]],
        *,
        size: int,
        max_messages: int,
        idle_close_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._open = open_session
        self.clock = clock
        self._idle: list[Session] = []
        self._slots = asyncio.Semaphore(size)
        self.max_messages = max_messages
        self.idle_close_s = idle_close_s
        self.opened = 0  # sessions opened so far (tests, the bench)

    async def take(self) -> Session:
        """An open session for one message: an idle one still fresh, else a new one (the
        caller's `open_session` errors propagate, the slot freed)."""
        await self._slots.acquire()
        now = self.clock()
        while self._idle:
            session = self._idle.pop()
            if session.client.is_connected and now - session.idle_since < self.idle_close_s:
                session.reused = True
                return session
            await _close(session.client)
        try:
            client = await self._open()
        except BaseException:
            self._slots.release()
            raise
        self.opened += 1
        return Session(client, idle_since=self.clock())

    async def give_back(self, session: Session, *, healthy: bool) -> None:
        """Return `session` after its message: kept when the relay accepted it and it has
        messages left, else closed."""
        session.sent += 1
        try:
            if healthy and session.sent < self.max_messages and session.client.is_connected:
                session.idle_since = self.clock()
                session.reused = False
                self._idle.append(session)
            else:
                await _close(session.client)
        finally:
            self._slots.release()

    def discard(self, session: Session) -> None:
        """Drop `session` at once, without a word to the relay: its delivery was cancelled
        (the call's deadline, a stop) mid-transaction, so its state is unknown. Synchronous,
        so a cancelled caller cannot leak its slot."""
        session.client.close()
        self._slots.release()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for session in idle:
            await _close(session.client)


async def _close(client: aiosmtplib.SMTP) -> None:
    """QUIT politely; a relay that already hung up is fine."""
    if client.is_connected:
        try:
            await asyncio.wait_for(client.quit(), 5)
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()
