"""The email sink's I/O: one SMTP transaction per delivery to the platform's relay.

`EmailConnector.deliver` renders the record's templates, builds the message (wire.py),
resolves the relay host and checks every address against the outbound policy
(`resolve_checked`), connects to a checked address itself (so DNS cannot change between the
check and the connection), optionally upgrades with STARTTLS / uses implicit TLS, logs in when
configured, sends, and writes one audit line (method ``SMTP``, status = the final reply code or
the error class; never an address). Every SMTP reply is classified (wire.classify_reply), never
raised; connection failures and timeouts become RETRY answers.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from email.message import EmailMessage
from typing import Any

import aiosmtplib
from streams.topics import Destination

from connectors.sinks.answer import Answer, fatal, ok, retry
from connectors.sinks.base import DeliveryContext, Limits, SinkEnv
from connectors.sinks.email import render, wire
from connectors.sinks.email.config import EmailConfig
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

    def compose(self, record: dict[str, Any], idempotency_key: str) -> EmailMessage:
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

    async def _send(self, message: EmailMessage) -> Answer:
        cfg = self.config
        started = time.monotonic()
        try:
            addresses = await resolve_checked(cfg.smtp_host, cfg.smtp_port, self.policy)
        except OutboundRefused as exc:
            audit("SMTP", cfg.smtp_host, "smtp.refused", started)
            return fatal("smtp.refused", str(exc))
        except OSError:
            audit("SMTP", cfg.smtp_host, "smtp.connection", started)
            return retry("smtp.connection", "cannot resolve the relay host")
        try:
            sock = await self._connect(addresses)
        except (OSError, TimeoutError) as exc:
            audit("SMTP", cfg.smtp_host, "smtp.connection", started)
            return retry("smtp.connection", f"cannot connect to the relay: {type(exc).__name__}")
        client = aiosmtplib.SMTP(
            hostname=cfg.smtp_host,
            local_hostname=self.local_hostname,
            sock=sock,
            use_tls=cfg.use_tls,
            start_tls=cfg.starttls,
            validate_certs=cfg.validate_certs,
            timeout=cfg.timeout_s,
        )
        answer = await self._transaction(client, message)
        audit("SMTP", cfg.smtp_host, answer.status or answer.error_class or "-", started)
        return answer

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

    async def _transaction(self, client: aiosmtplib.SMTP, message: EmailMessage) -> Answer:
        """EHLO, [STARTTLS], [AUTH], MAIL, RCPT, DATA, QUIT: the classified outcome."""
        cfg = self.config
        try:
            await client.connect()
            if cfg.username:
                password = cfg.password.get_secret_value() if cfg.password else ""
                await client.login(cfg.username, password)
            await client.send_message(message)
            return ok(250)  # send_message raises for every non-2yz reply
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0] if exc.recipients else None
            return wire.classify_reply(first.code if first else 550, first.message if first else "")
        except aiosmtplib.SMTPResponseException as exc:
            return wire.classify_reply(exc.code, exc.message)
        except aiosmtplib.SMTPNotSupported:
            return fatal("smtp.not_supported", "the relay does not offer a configured extension")
        except aiosmtplib.SMTPTimeoutError:
            return retry("smtp.timeout", "the relay did not answer in time")
        except (aiosmtplib.SMTPException, OSError) as exc:
            return retry("smtp.connection", f"connection to the relay failed: {type(exc).__name__}")
        finally:
            await _quit(client)

    async def aclose(self) -> None:
        """Nothing held between deliveries (one connection per delivery)."""


async def _quit(client: aiosmtplib.SMTP) -> None:
    """Close politely; a relay that already hung up is fine."""
    if client.is_connected:
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError):
            client.close()


def build(env: SinkEnv) -> EmailConnector:
    """The connector from WEDSYNC_EMAIL_* settings (the registry's factory)."""
    return EmailConnector(env.policy, env.settings(EmailConfig))
