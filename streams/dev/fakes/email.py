"""A real SMTP server that captures what the email sink sends (`wedsync fake smtp`).

`SmtpCapture` runs aiosmtpd's Controller on a loopback port in a background thread. It keeps
every accepted message (`messages`, parsed), counts what happened (`counters`:
``messages_accepted``, ``rejected``, ``auth_failed``) and can be told to answer a given reply
for the next N transactions (`reject_next`), at RCPT (``450 4.7.1`` greylisting, ``550 5.1.1``
no such user) or at DATA. With `users` it requires AUTH (PLAIN/LOGIN, allowed without TLS on
loopback), so a wrong password gets aiosmtpd's ``535 5.7.8``. With `tls_context` it offers
STARTTLS (and with `require_starttls` refuses mail before it: ``530 5.7.0``).

    capture = SmtpCapture(users={"relay": "s3cret"}).start()
    capture.reject_next("450 4.7.1 Greylisted, try again later")
    ...
    capture.stop()
"""

from __future__ import annotations

import asyncio
import email
import logging
import socket
import ssl
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from functools import cached_property
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from streams.logic.mime import POLICY

log = logging.getLogger("wedsync.fake.smtp")


@dataclass(frozen=True)
class Captured:
    """One accepted message: the envelope and the message as received, parsed when first
    read (`message`): a relay does not parse MIME, and parsing every message cost the capture
    server more CPU than the sink spent composing it (`bench delivery`)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes

    @cached_property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=POLICY)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @cached_property
    def headers(self) -> Message:
        """The top-level headers alone, as plain strings (no MIME parse)."""
        return BytesHeaderParser(policy=compat32).parsebytes(self.raw)


@dataclass
class _Rejection:
    reply: str
    remaining: int
    stage: str


class _Handler:
    """aiosmtpd handler: injected rejections first, then capture."""

    def __init__(self, capture: SmtpCapture) -> None:
        self.capture = capture

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        reply = self.capture._take("RCPT")
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = self.capture._take("DATA")
        if reply is not None:
            return reply
        raw = envelope.original_content or envelope.content or b""
        data = raw if isinstance(raw, bytes) else raw.encode()
        self.capture._store(Captured(str(envelope.mail_from), tuple(envelope.rcpt_tos), data))
        return "250 2.0.0 OK: queued"


class SmtpCapture:
    """The capture server. `port=0` picks a free loopback port; `port` and `hostname` are
    set once started. Thread-safe accessors: `messages`, `counters`, `reject_next`."""

    def __init__(
        self,
        hostname: str = "127.0.0.1",
        port: int = 0,
        users: dict[str, str] | None = None,
        on_message: Callable[[Captured], None] | None = None,
        tls_context: ssl.SSLContext | None = None,
        require_starttls: bool = False,
    ) -> None:
        self.tls_context = tls_context
        self.require_starttls = require_starttls
        self.on_message = on_message
        self.hostname = hostname
        self.port = port or _free_port(hostname)
        self.users = dict(users or {})
        self.counters: Counter[str] = Counter()
        self._messages: list[Captured] = []
        self._rejections: list[_Rejection] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    # ---- control (tests, CLI) ----------------------------------------------------------
    def start(self) -> SmtpCapture:
        """Start serving; returns self. Raises OSError when the port is taken."""
        kwargs: dict[str, Any] = {}
        if self.users:
            kwargs = {
                "authenticator": self._authenticate,
                "auth_required": True,
                "auth_require_tls": False,
            }
        if self.tls_context is not None:
            kwargs["tls_context"] = self.tls_context
            kwargs["require_starttls"] = self.require_starttls
        self._controller = Controller(  # server_hostname: no getfqdn() per session
            _Handler(self), hostname=self.hostname, port=self.port,
            server_hostname="smtp-capture.wedsync.invalid", **kwargs,
        )  # fmt: skip
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpCapture:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reject_next(self, reply: str, count: int = 1, stage: str = "RCPT") -> None:
        """Answer `reply` (e.g. ``"450 4.7.1 Greylisted"``) to the next `count` RCPT (or
        DATA) commands instead of accepting."""
        if stage not in ("RCPT", "DATA"):
            raise ValueError("stage must be RCPT or DATA")
        with self._lock:
            self._rejections.append(_Rejection(reply, count, stage))

    @property
    def messages(self) -> list[Captured]:
        with self._lock:
            return list(self._messages)

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
            self.counters.clear()

    # ---- handler side ------------------------------------------------------------------
    def _take(self, stage: str) -> str | None:
        with self._lock:
            for rejection in self._rejections:
                if rejection.stage == stage and rejection.remaining > 0:
                    rejection.remaining -= 1
                    self.counters["rejected"] += 1
                    reply = rejection.reply
                    self._rejections = [r for r in self._rejections if r.remaining > 0]
                    return reply
        return None

    def _store(self, captured: Captured) -> None:
        with self._lock:
            self._messages.append(captured)
            self.counters["messages_accepted"] += 1
        if log.isEnabledFor(logging.INFO):
            log.info(
                "captured message message_id=%s template=%s",
                captured.headers.get("Message-ID", "-"),
                captured.headers.get("X-WedSync-Template", "-"),
            )
        if self.on_message is not None:
            self.on_message(captured)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            user = data.login.decode(errors="replace")
            if self.users.get(user) == data.password.decode(errors="replace"):
                return AuthResult(success=True)
        with self._lock:
            self.counters["auth_failed"] += 1
        return AuthResult(success=False, handled=False)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def show(captured: Captured) -> None:
    """Print one captured message for a person watching `wedsync fake smtp`: its headers of
    interest, and on a terminal its plain-text body (a local development tool; nothing leaves
    the host). Piped or discarded (a benchmark's server), the headers alone: parsing every
    body cost the capture server half its CPU."""
    headers = captured.headers
    subject = str(make_header(decode_header(headers.get("Subject", ""))))
    text = ""
    if sys.stdout.isatty():
        body = captured.message.get_body(("plain",))
        text = body.get_content() if isinstance(body, EmailMessage) else ""
    print(
        f"--- {headers.get('Message-ID', '-')} template={headers.get('X-WedSync-Template', '-')}"
        f"\nSubject: {subject}\n\n{text}",
        flush=True,
    )


async def serve(host: str, port: int, **kwargs: Any) -> None:
    """Run a capture server until cancelled (``wedsync fake smtp``), printing each message.
    Keyword `users` (dict of user -> password) turns on AUTH."""
    capture = SmtpCapture(host, port, users=kwargs.get("users"), on_message=show)
    capture.start()
    log.info("fake SMTP server on %s:%s", host, capture.port)
    try:
        await asyncio.Event().wait()
    finally:
        capture.stop()
