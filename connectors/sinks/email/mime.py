"""A multipart/alternative message as the bytes the relay is sent, written directly.

Composing with `email.message.EmailMessage` and flattening it again for SMTP cost 0.7 ms a
message, half of the email sink's CPU (py-spy under `bench delivery`): its header registry
parses every value it was just given, and its content manager and generator walk the parts
twice. The message the sink sends has one fixed shape, so this module writes that shape:

    headers (in the order given), MIME-Version, Content-Type: multipart/alternative
    --boundary  text/plain; charset="utf-8"
    --boundary  text/html; charset="utf-8"
    --boundary--

Everything written is 7-bit: a header value that is plain printable ASCII and fits a 78
character line is written as it is; any other (non-ASCII, control characters, text that
looks like an encoded word, too long) becomes RFC 2047 encoded words folded under 78
characters (`email.header.Header`, the standard library's encoder). A body that is printable
ASCII in lines of at most 78 characters is 7bit; any other is quoted-printable (`binascii`).
Line breaks are LF; aiosmtplib's DATA turns them into CRLF and dot-stuffs. The boundary is
random and checked against both bodies. What a reader sees is checked in the tests by
parsing these bytes back with `email.policy.default`.
"""

from __future__ import annotations

import binascii
import re
import secrets
from email.header import Header

MAX_LINE = 78  # RFC 5322 2.1.1: SHOULD be no more than 78 characters
_PLAIN_BODY = re.compile(r"[\t\x20-\x7e]*")
_SPECIALS = re.compile(r'[][\\()<>@,:;".]')  # RFC 5322 specials: a display name with one is quoted


def header(name: str, value: str) -> str:
    """One header field, folded, 7-bit (see the module docstring)."""
    if _plain(value, len(name) + 2):
        return f"{name}: {value}"
    return f"{name}: {_encoded(name, value)}"


def mailbox(name: str, display_name: str, addr_spec: str) -> str:
    """An address header (``From``, ``To``): ``Display Name <addr-spec>``, or only the
    address when the name is empty. `addr_spec` must already be checked 7-bit ASCII."""
    if not display_name:
        return f"{name}: {addr_spec}"
    room = len(name) + 2 + len(addr_spec) + 3
    if _plain(display_name, room):
        phrase = display_name
        if _SPECIALS.search(phrase):
            phrase = '"' + phrase.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if len(phrase) + room <= MAX_LINE:
            return f"{name}: {phrase} <{addr_spec}>"
    field = f"{name}: {_encoded(name, display_name)}"
    if len(field.rsplit("\n", 1)[-1]) + len(addr_spec) + 3 <= MAX_LINE:
        return f"{field} <{addr_spec}>"
    return f"{field}\n <{addr_spec}>"


def alternative(headers: list[str], text: str, html: str) -> bytes:
    """The whole message: `headers` (already made by `header`/`mailbox`), then the plain
    text and HTML parts."""
    parts = [_part("plain", text), _part("html", html)]
    boundary = _boundary(parts)
    lines = [
        *headers,
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative;\n boundary="{boundary}"',
        "",
    ]
    for part in parts:
        lines += [f"--{boundary}", part]
    lines += [f"--{boundary}--", ""]
    return "\n".join(lines).encode("ascii")


def _plain(value: str, used: int) -> bool:
    """Whether `value` can follow `used` characters of its line as it is."""
    return (
        value.isascii()
        and value.isprintable()
        and "=?" not in value
        and used + len(value) <= MAX_LINE
        and value == value.strip()
    )


def _encoded(name: str, value: str) -> str:
    return Header(value, "utf-8", header_name=name, maxlinelen=MAX_LINE - 2).encode(linesep="\n")


def _part(subtype: str, text: str) -> str:
    body = text.replace("\r\n", "\n").replace("\r", "\n")
    if not body.endswith("\n"):
        body += "\n"
    head = f'Content-Type: text/{subtype}; charset="utf-8"\nContent-Transfer-Encoding: '
    lines = body.split("\n")
    if all(len(line) <= MAX_LINE and _PLAIN_BODY.fullmatch(line) for line in lines):
        return f"{head}7bit\n\n{body}"
    encoded = binascii.b2a_qp(body.encode("utf-8"), istext=True).decode("ascii")
    return f"{head}quoted-printable\n\n{encoded}"


def _boundary(parts: list[str]) -> str:
    """A random boundary that no part contains (quoted-printable never has ``==``; a 7bit
    body might, once in 2**64 tries)."""
    while True:
        boundary = f"=={secrets.token_hex(12)}=="
        if not any(boundary in part for part in parts):
            return boundary
