"""The email sink's I/O: one SMTP transaction per delivery, on sessions to the platform's
relay that are kept open and reused (`pool.RelayPool`).

`EmailConnector.deliver` renders the record's templates, builds the message (wire.py), takes
a session and sends, and writes one audit line (method ``SMTP``, status = the final reply
code or the error class; never an address). A session is opened by resolving the relay host
and checking every address against the outbound policy (`resolve_checked`), connecting to a
checked address itself (so DNS cannot change between the check and the connection),
optionally upgrading with STARTTLS / implicit TLS, and logging in when configured. Every
SMTP reply is classified (wire.classify_reply), never raised; connection failures and
timeouts become RETRY answers. A reused session the relay had dropped meanwhile is not the
message's failure: it is sent once more on a new session.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

import aiosmtplib
from streams.topics import Destination

from connectors.sinks.answer import Answer, fatal, ok, retry
from connectors.sinks.base import DeliveryContext, Limits, SinkEnv
from connectors.sinks.email import render, wire
from connectors.sinks.email.config import EmailConfig
from connectors.sinks.email.pool import RelayPool, Session
from connectors.sinks.outbound import (
    OutboundPolicy,
    OutboundRefused,
    audit,
    audit_scope,
    resolve_checked,
)

log = logging.getLogger("wedsync.sinks.email")

LIMIT_KEY = "email:relay"


class EmailConnector:
    """Delivers EmailDelivery records over SMTP. Build with ``EmailConnector(policy, config)``
    (tests: ``OutboundPolicy.loopback_for_tests(port)`` and an `EmailConfig` naming the capture
    server) or with `build(env)` from WEDSYNC_EMAIL_* variables."""

    destination = Destination.EMAIL

    def __init__(self, policy: OutboundPolicy, config: EmailConfig | None = None) -> None:
        self.policy = policy
        self.config = config or EmailConfig.model_construct()  # defaults, not the env
        # the EHLO name, looked up once: aiosmtplib otherwise calls the blocking
        # socket.getfqdn() on every connection, inside the event loop
        self.local_hostname = socket.getfqdn()
        cfg = self.config
        self.pool = RelayPool(self._open_session, size=cfg.pool_size,
                              max_messages=cfg.messages_per_connection,
                              idle_close_s=cfg.idle_close_s)  # fmt: skip

    def target(self, record: dict[str, Any]) -> str:
        """``email:<recipient id>`` (never the address)."""
        return f"email:{record.get('recipient_id') or 'unknown'}"

    def limit(self, record: dict[str, Any]) -> tuple[str, Limits]:
        """One limit for the whole relay (WEDSYNC_EMAIL_RATE_PER_S / _BURST / _CONCURRENCY)."""
        cfg = self.config
        return LIMIT_KEY, Limits(
            rate_per_s=cfg.rate_per_s, burst=cfg.burst, concurrency=cfg.concurrency
        )

    def credential_key(self, record: dict[str, Any]) -> str | None:
        """None: the platform's own relay credential, not an integration's."""
        return None

    def compose(self, record: dict[str, Any], idempotency_key: str) -> wire.Outgoing:
        """The message for `record`. Raises render.TemplateRefused or wire.BadAddress."""
        text, html = render.render(
            str(record.get("template") or ""),
            str(record.get("subject") or ""),
            dict(record.get("variables") or {}),
        )
        return wire.build_message(
            record,
            text,
            html,
            idempotency_key=idempotency_key,
            from_address=self.config.from_address,
            from_name=self.config.from_name,
            message_id_domain=self.config.message_id_domain,
        )

    async def deliver(self, record: dict[str, Any], ctx: DeliveryContext) -> Answer:
        """Send one message; classify the relay's answer. A record that cannot be rendered
        or addressed, or a relay address the outbound policy refuses, is FATAL (dead
        letter); an unresolvable or unreachable relay is RETRY."""
        try:
            message = self.compose(record, ctx.idempotency_key)
        except render.TemplateRefused as exc:
            return fatal("email.template", str(exc))
        except wire.BadAddress as exc:
            return fatal("email.bad_address", str(exc))
        with audit_scope(self.destination.value, self.target(record)):
            return await self._send(message)

    async def _send(self, message: wire.Outgoing) -> Answer:
        started = time.monotonic()
        while True:
            try:
                session = await self.pool.take()
            except _OpenFailed as failed:
                audit("SMTP", self.config.smtp_host, failed.status, started)
                return failed.answer
            try:
                answer, stale = await self._transaction(session, message)
            except BaseException:  # cancelled mid-transaction: never back in the pool
                self.pool.discard(session)
                raise
            await self.pool.give_back(session, healthy=answer.ok)
            if not stale:
                audit("SMTP", self.config.smtp_host, answer.status or answer.error_class or "-",
                      started)  # fmt: skip
                return answer  # else: the relay dropped the idle session; a new one

    async def _open_session(self) -> aiosmtplib.SMTP:
        """A connected, greeted (EHLO, [STARTTLS], [AUTH]) session to a checked relay
        address; _OpenFailed with the classified answer otherwise."""
        cfg = self.config
        try:
            addresses = await resolve_checked(cfg.smtp_host, cfg.smtp_port, self.policy)
        except OutboundRefused as exc:
            raise _OpenFailed(fatal("smtp.refused", str(exc))) from None
        except OSError:
            raise _OpenFailed(retry("smtp.connection", "cannot resolve the relay host")) from None
        try:
            sock = await self._connect(addresses)
        except (OSError, TimeoutError) as exc:
            why = f"cannot connect to the relay: {type(exc).__name__}"
            raise _OpenFailed(retry("smtp.connection", why)) from None
        client = aiosmtplib.SMTP(
            hostname=cfg.smtp_host,
            local_hostname=self.local_hostname,
            sock=sock,
            use_tls=cfg.use_tls,
            start_tls=cfg.starttls,
            validate_certs=cfg.validate_certs,
            timeout=cfg.timeout_s,
        )
        try:
            await client.connect()
            if cfg.username:
                password = cfg.password.get_secret_value() if cfg.password else ""
                await client.login(cfg.username, password)
        except BaseException as exc:
            client.close()
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise _OpenFailed(_classified(exc)) from None
        return client

    async def _connect(self, addresses: list[str]) -> socket.socket:
        """A connected non-blocking socket to the first checked address that answers."""
        loop = asyncio.get_running_loop()
        last: BaseException | None = None
        for address in addresses:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                await asyncio.wait_for(
                    loop.sock_connect(sock, (address, self.config.smtp_port)),
                    self.policy.connect_timeout_s,
                )
                return sock
            except (OSError, TimeoutError) as exc:
                sock.close()
                last = exc
        raise last if last is not None else OSError("no address to connect to")

    @staticmethod
    async def _transaction(session: Session, message: wire.Outgoing) -> tuple[Answer, bool]:
        """MAIL, RCPT, DATA on `session`: the classified outcome, and whether it failed only
        because the relay had dropped the session while it was idle (send it again)."""
        try:
            await session.client.sendmail(message.sender, [message.recipient], message.data)
            return ok(250), False  # sendmail raises for every non-2yz reply
        except aiosmtplib.SMTPServerDisconnected as exc:
            return _classified(exc), session.reused
        except (aiosmtplib.SMTPException, OSError) as exc:
            return _classified(exc), False

    async def aclose(self) -> None:
        """QUIT the sessions kept open."""
        await self.pool.aclose()


class _OpenFailed(Exception):
    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.message)
        self.answer = answer
        self.status = answer.status or answer.error_class or "-"


def _classified(exc: BaseException) -> Answer:
    """What an SMTP failure means (every reply code through wire.classify_reply)."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        first = exc.recipients[0] if exc.recipients else None
        return wire.classify_reply(first.code if first else 550, first.message if first else "")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return wire.classify_reply(exc.code, exc.message)
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return fatal("smtp.not_supported", "the relay does not offer a configured extension")
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return retry("smtp.timeout", "the relay did not answer in time")
    return retry("smtp.connection", f"connection to the relay failed: {type(exc).__name__}")


def build(env: SinkEnv) -> EmailConnector:
    """The connector from WEDSYNC_EMAIL_* settings (the registry's factory)."""
    return EmailConnector(env.policy, env.settings(EmailConfig))
