"""The email sink's message bytes, read back by the standard library's parser (an independent
reader, `email.policy.default`) for any subject, name, template and body: what a reader sees
is what the record said, nothing more (no header a value could add), and the bytes are 7-bit
in lines a relay takes. No I/O."""

from __future__ import annotations

import email
import email.policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from typing import Any

import pytest
from connectors.sinks.email import wire
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HEADERS = {"from", "to", "subject", "date", "message-id", "auto-submitted",
           "x-wedsync-template", "mime-version", "content-type"}  # fmt: skip
ANY_TEXT = st.text(max_size=300)
BODY = st.text(alphabet=st.characters(codec="utf-8"), max_size=2000)
RELAXED = settings(max_examples=150, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow])  # fmt: skip


def send(**fields: Any) -> bytes:
    text, html = fields.pop("text", "plain"), fields.pop("html", "<p>html</p>")
    record = {"to_address": "ann@example.com", "to_name": "Ann", "subject": "S",
              "template": "generic", **fields}  # fmt: skip
    return wire.build_message(record, text, html, idempotency_key="dlv-1",
                              from_address=fields.get("from_address", "notify@wedsync.example"),
                              from_name=fields.get("from_name", "WedSync"),
                              message_id_domain="mail.wedsync.example").data  # fmt: skip


def read(data: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert not parsed.defects, parsed.defects
    return parsed


def assert_relay_safe(data: bytes) -> None:
    """7-bit, and no line longer than SMTP's 998 octets (RFC 5321 4.5.3.1.6)."""
    assert all(byte < 128 for byte in data)
    assert max(len(line) for line in data.split(b"\n")) <= 998


def bodies(parsed: EmailMessage) -> list[str]:
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    return [str(p.get_content()) for p in parts]


def display_name(data: bytes, header: str) -> tuple[str, str]:
    """(display name, address) as an RFC 2047 reader shows them. The modern parser puts a
    space between two encoded words of one display name (RFC 2047 6.2: the space between
    adjacent encoded words is not part of the text); the compat32 decoder does not."""
    (addr,) = read(data)[header].addresses
    raw = email.message_from_bytes(data, policy=email.policy.compat32)[header]
    if "=?" not in raw:
        return addr.display_name, addr.addr_spec
    decoded = str(make_header(decode_header(raw.replace("\n", ""))))
    name, _, rest = decoded.rpartition(" <")
    assert rest == addr.addr_spec + ">"
    return name, addr.addr_spec


def sent_text(text: str) -> str:
    """What a reader gets back for body `text`: line breaks as LF, ending in one."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text if text.endswith("\n") else text + "\n"


@RELAXED
@given(subject=ANY_TEXT)
def test_any_subject_reads_back_as_one_line_and_adds_no_header(subject: str) -> None:
    data = send(subject=subject)
    parsed = read(data)
    assert parsed["Subject"] == wire.one_line(subject)
    assert {k.lower() for k in parsed} == HEADERS
    assert_relay_safe(data)


@RELAXED
@given(name=ANY_TEXT)
def test_any_display_name_reads_back_with_the_address(name: str) -> None:
    data = send(to_name=name)
    assert display_name(data, "To") == (wire.one_line(name), "ann@example.com")
    assert {k.lower() for k in read(data)} == HEADERS
    assert_relay_safe(data)


@RELAXED
@given(name=ANY_TEXT)
def test_any_sender_name_reads_back(name: str) -> None:
    data = send(from_name=name)
    assert display_name(data, "From") == (wire.one_line(name), "notify@wedsync.example")


@RELAXED
@given(template=ANY_TEXT)
def test_any_template_name_reads_back(template: str) -> None:
    parsed = read(send(template=template))
    assert parsed["X-WedSync-Template"] == wire.one_line(template)
    assert {k.lower() for k in parsed} == HEADERS


@RELAXED
@given(text=BODY, html=BODY)
def test_any_bodies_read_back_exactly(text: str, html: str) -> None:
    data = send(text=text, html=html)
    assert bodies(read(data)) == [sent_text(text), sent_text(html)]
    assert_relay_safe(data)


@pytest.mark.parametrize(
    "body",
    [
        "x" * 5000,  # one line far over 998
        ".\n..\n.leading dots\n",  # SMTP's end of data, unstuffed (aiosmtplib stuffs)
        "From the start\n",  # mbox's From line
        "--==0123456789abcdef01234567==\n",  # boundary-shaped text
        "tabs\tand trailing spaces   \n",
        "nul \x00 and escape \x1b and form feed \x0c",
        "CRLF\r\nlone CR\rend",
        "Zoë — 💍 mariage",
    ],
)
def test_hostile_bodies_read_back_exactly(body: str) -> None:
    data = send(text=body, html=body)
    assert bodies(read(data)) == [sent_text(body), sent_text(body)]
    assert_relay_safe(data)


@pytest.mark.parametrize(
    "subject",
    ["=?utf-8?q?looks_encoded?=", "x" * 2000, " ".join(["word"] * 400), "a\tb", "\x01ctrl"],
)
def test_hostile_subjects_read_back(subject: str) -> None:
    data = send(subject=subject)
    assert read(data)["Subject"] == wire.one_line(subject)
    assert_relay_safe(data)


@pytest.mark.parametrize(
    "name", ['Ann "the cake" O\'Neil', "Vendor, Ltd.", "back\\slash", "x" * 300, "a@b <c@d>"]
)
def test_display_names_with_specials_are_quoted_not_parsed_as_addresses(name: str) -> None:
    assert display_name(send(to_name=name), "To") == (name, "ann@example.com")


def test_an_internationalised_domain_goes_in_its_idna_form_in_header_and_envelope() -> None:
    record = {"to_address": "ann@bücher.example", "to_name": "Ann"}
    out = wire.build_message(record, "t", "h", idempotency_key="k", from_address="n@w.example",
                             from_name="W", message_id_domain="w.example")  # fmt: skip
    assert out.recipient == "ann@xn--bcher-kva.example"
    assert read(out.data)["To"].addresses[0].addr_spec == "ann@xn--bcher-kva.example"


def test_a_non_ascii_local_part_is_refused_naming_smtputf8_not_the_address() -> None:
    with pytest.raises(wire.BadAddress, match="SMTPUTF8") as info:
        send(to_address="josé@example.com")
    assert "josé" not in str(info.value)


def test_a_long_message_id_is_written_as_it_is_never_as_encoded_words() -> None:
    key = "dlv-" + "k" * 190
    out = wire.build_message({"to_address": "a@b.example"}, "t", "h", idempotency_key=key,
                             from_address="n@w.example", from_name="W",
                             message_id_domain="mail.wedsync.example")  # fmt: skip
    assert read(out.data)["Message-ID"] == f"<{key}@mail.wedsync.example>"
    assert f"Message-ID: <{key}@mail.wedsync.example>\n".encode() in out.data


def test_a_message_id_domain_that_is_not_ascii_is_written_in_its_idna_form() -> None:
    assert wire.message_id("k", "bücher.example") == "<k@xn--bcher-kva.example>"
    assert wire.message_id("k", "not a domain") == "<k@wedsync.invalid>"
