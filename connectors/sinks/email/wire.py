"""Pure pieces of the email sink: the message from a record, the meaning of an SMTP reply.

No I/O. `build_message` takes already rendered bodies (render.py); `classify_reply` turns an
SMTP reply code (RFC 5321 4.2) into an `Answer`:

    2yz                ok
    530, 534, 535      re-auth (authentication required / too weak / credentials refused),
                       except 530 "must issue a STARTTLS command first": fatal (configuration)
    any other 4yz      retry, on the FIRST digit: 421 closing, 450/451/452, 4.7.1
                       greylisting, 4.2.2 mailbox full
    any other 5yz      fatal (5.1.1 no such user, 5.7.1 relay denied, 552 too big ...)
    anything else      retry (no reply: connection dropped, timeout; aiosmtplib's -1)

error_class is ``smtp.<code>`` for 5yz and the auth codes (a closed set: three digits) and
``smtp.4xx`` for every 4yz. Messages carry the code and the enhanced status code (``5.1.1``)
only: a server's free text often quotes the recipient's address.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.utils import format_datetime
from typing import Any

import idna

from connectors.sinks.answer import Answer, fatal, ok, reauth, retry
from connectors.sinks.email import mime

AUTH_CODES = frozenset({530, 534, 535})
_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_ID_SAFE = re.compile(r"^[A-Za-z0-9._+=-]{1,200}$")
_ID_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,198}[A-Za-z0-9])?$")
_LINE_BREAKS = re.compile(r"[\r\n\x00\u2028\u2029\x85\x0b\x0c]+")


class BadAddress(ValueError):
    """The recipient (or configured sender) is not a usable address. The message never
    contains the address."""


def one_line(value: str) -> str:
    """A header value with every line break (and NUL) replaced by a space: a subject or a
    display name can never start a new header line."""
    return " ".join(_LINE_BREAKS.sub(" ", value).split())


def message_id(idempotency_key: str, domain: str) -> str:
    """``<key@domain>``: the same for every retry of one delivery. A key with characters a
    Message-ID cannot carry is replaced by its SHA-256 (still stable)."""
    key = idempotency_key if _ID_SAFE.match(idempotency_key) else _digest(idempotency_key)
    return f"<{key}@{_id_domain(one_line(domain))}>"


def _id_domain(domain: str) -> str:
    """The Message-ID's domain as 7-bit text: an internationalised one in its IDNA form,
    one that cannot be a domain at all ``wedsync.invalid``."""
    if _ID_DOMAIN.match(domain):
        return domain
    try:
        return _idna(domain)
    except UnicodeError:  # idna.IDNAError too
        return "wedsync.invalid"


def _idna(domain: str) -> str:
    """`domain` in its IDNA 2008 form (UTS 46 mapping); UnicodeError when it has none."""
    return str(idna.encode(domain, uts46=True).decode("ascii"))


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def address(addr_spec: str, what: str) -> str:
    """`addr_spec` checked, as the 7-bit text both the envelope and the header carry (an
    internationalised domain in its IDNA form); BadAddress naming `what` (never the value)
    when it is not usable. A non-ASCII local part needs SMTPUTF8, which the sink does not
    use: refused."""
    spec = addr_spec.strip()
    if not spec or _LINE_BREAKS.search(spec) or spec.count("@") != 1:
        raise BadAddress(f"{what}: not an email address")
    return _checked(spec, what)


@functools.lru_cache(maxsize=4096)  # a sink writes to the same vendors all day
def _checked(spec: str, what: str) -> str:
    if not spec.rsplit("@", 1)[0].isascii():
        raise BadAddress(f"{what}: a non-ASCII local part needs SMTPUTF8, which is not used")
    try:
        parsed = Address(addr_spec=spec)
    except (ValueError, IndexError, TypeError) as exc:
        raise BadAddress(f"{what}: not an email address ({type(exc).__name__})") from None
    domain = parsed.domain
    if not domain.isascii():
        try:
            domain = _idna(domain)
        except UnicodeError:  # idna.IDNAError too
            raise BadAddress(f"{what}: the domain is not a valid IDNA name") from None
    spec = parsed.addr_spec.rsplit("@", 1)[0] + "@" + domain
    if not spec.isprintable():
        raise BadAddress(f"{what}: not an email address (control characters)")
    return spec


@dataclass(frozen=True)
class Outgoing:
    """One message as it goes to the relay: the envelope and the DATA bytes."""

    sender: str
    recipient: str
    data: bytes


def build_message(
    record: dict[str, Any],
    text: str,
    html: str,
    *,
    idempotency_key: str,
    from_address: str,
    from_name: str,
    message_id_domain: str,
    now: datetime | None = None,
) -> Outgoing:
    """A multipart/alternative message (text first, then HTML) for one EmailDelivery
    (`mime.alternative`: 7-bit, folded, headers encoded where needed).

    Raises BadAddress for an unusable recipient or sender."""
    sender = address(from_address, "sender")
    recipient = address(record["to_address"], "recipient")
    headers = [
        mime.mailbox("From", one_line(from_name or ""), sender),
        mime.mailbox("To", one_line(record.get("to_name") or ""), recipient),
        mime.header("Subject", one_line(record.get("subject") or "")),
        # structured, never encoded: both are ASCII by construction, a msg-id under 420
        f"Date: {format_datetime(now or datetime.now(UTC))}",
        f"Message-ID: {message_id(idempotency_key, message_id_domain)}",
        "Auto-Submitted: auto-generated",
        mime.header("X-WedSync-Template", one_line(str(record.get("template") or ""))),
    ]
    return Outgoing(sender, recipient, mime.alternative(headers, text, html))


def enhanced_status(message: str) -> str | None:
    """The RFC 3463 enhanced status code (``4.7.1``) in a reply text, if any."""
    match = _ENHANCED.search(message or "")
    return ".".join(match.groups()) if match else None


def classify_reply(code: int, message: str = "") -> Answer:
    """The Answer for an SMTP reply `code` (see the module docstring). `message` is read
    only for its enhanced status code, which the Answer's message repeats."""
    enhanced = enhanced_status(message)
    detail = f"SMTP {code}" + (f" {enhanced}" if enhanced else "")
    if 200 <= code < 300:
        return ok(code)
    if code == 530 and "STARTTLS" in (message or "").upper():
        return fatal(
            "smtp.530", f"{detail}: the relay requires STARTTLS (set _STARTTLS)", status=code
        )
    if code in AUTH_CODES:
        return reauth(f"smtp.{code}", f"{detail}: the relay refused our credentials", status=code)
    if 400 <= code < 500:
        return retry("smtp.4xx", f"{detail}: transient, retry later", status=code)
    if 500 <= code < 600:
        return fatal(f"smtp.{code}", f"{detail}: permanent failure", status=code)
    return retry("smtp.connection", f"SMTP {code}: no usable reply", status=None)
