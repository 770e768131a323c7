"""Email wire: SMTP reply classification, message building, templates. No I/O."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from typing import Any

import pytest
from connectors.sinks.answer import Verdict
from connectors.sinks.email import render, wire


def record(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "delivery_id": "dlv-1",
        "recipient_id": "sup-1",
        "to_address": "ann@example.com",
        "to_name": "Ann Vendor",
        "template": "form_response",
        "subject": "New form response from Bea",
        "variables": {"client_name": "Bea", "form_name": "Questionnaire"},
    }
    return {**base, **overrides}


def build(rec: dict[str, Any], text: str = "text body", html: str = "<p>html</p>") -> Any:
    """The message as a reader sees it: the bytes sent, parsed by the standard library."""
    return email.message_from_bytes(raw(rec, text, html), policy=email.policy.default)


def raw(rec: dict[str, Any], text: str = "text body", html: str = "<p>html</p>") -> bytes:
    return wire.build_message(
        rec,
        text,
        html,
        idempotency_key="dlv-1",
        from_address="notify@wedsync.example",
        from_name="WedSync",
        message_id_domain="mail.wedsync.example",
        now=datetime(2026, 6, 1, 12, 0, tzinfo=UTC),
    ).data


# ---- classification: every reply PROVIDERS.md names, verdicts written out ----------------
@pytest.mark.parametrize(
    ("code", "text", "verdict", "error_class"),
    [
        (250, "2.0.0 OK", Verdict.OK, None),
        (251, "2.1.5 forwarded", Verdict.OK, None),
        (421, "4.3.2 service not available, closing", Verdict.RETRY, "smtp.4xx"),
        (450, "4.7.1 Greylisted, try again later", Verdict.RETRY, "smtp.4xx"),
        (451, "4.3.0 local error", Verdict.RETRY, "smtp.4xx"),
        (452, "4.2.2 mailbox full", Verdict.RETRY, "smtp.4xx"),
        (454, "4.7.0 TLS not available", Verdict.RETRY, "smtp.4xx"),
        (550, "5.1.1 no such user", Verdict.FATAL, "smtp.550"),
        (551, "5.1.6 user not local", Verdict.FATAL, "smtp.551"),
        (552, "5.3.4 message too big", Verdict.FATAL, "smtp.552"),
        (553, "5.1.3 bad address syntax", Verdict.FATAL, "smtp.553"),
        (554, "5.7.1 relay denied", Verdict.FATAL, "smtp.554"),
        (530, "5.7.0 authentication required", Verdict.REAUTH, "smtp.530"),
        (534, "5.7.9 mechanism too weak", Verdict.REAUTH, "smtp.534"),
        (535, "5.7.8 authentication credentials invalid", Verdict.REAUTH, "smtp.535"),
        (-1, "", Verdict.RETRY, "smtp.connection"),
    ],
)
def test_classify_reply(code: int, text: str, verdict: Verdict, error_class: str | None) -> None:
    answer = wire.classify_reply(code, text)
    assert answer.verdict is verdict
    assert answer.error_class == error_class


def test_greylisting_is_classified_on_the_first_digit_even_with_a_5_enhanced_code() -> None:
    assert wire.classify_reply(451, "5.7.1 odd server").verdict is Verdict.RETRY


def test_classification_message_has_the_enhanced_code_but_never_the_server_text() -> None:
    answer = wire.classify_reply(550, "5.1.1 <ann@example.com>: Recipient address rejected")
    assert "5.1.1" in answer.message
    assert "ann@example.com" not in answer.message
    assert "Recipient" not in answer.message


def test_enhanced_status_absent() -> None:
    assert wire.enhanced_status("Requested action not taken") is None


# ---- message building -----------------------------------------------------------------
def test_message_id_is_the_idempotency_key_at_the_configured_domain() -> None:
    assert build(record())["Message-ID"] == "<dlv-1@mail.wedsync.example>"


def test_message_id_of_an_unsafe_key_is_a_stable_digest() -> None:
    first = wire.message_id("a key with <spaces>", "d.example")
    assert first == wire.message_id("a key with <spaces>", "d.example")
    assert " " not in first and first.startswith("<") and first.endswith("@d.example>")
    assert len(first) == len("<@d.example>") + 64


def test_message_is_multipart_alternative_with_text_then_html() -> None:
    msg = build(record(), text="plain words", html="<p>rich words</p>")
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert parts[0].get_content().strip() == "plain words"
    assert parts[1].get_content().strip() == "<p>rich words</p>"


def test_from_to_and_subject_headers() -> None:
    msg = build(record())
    assert msg["From"] == "WedSync <notify@wedsync.example>"
    assert msg["To"] == "Ann Vendor <ann@example.com>"
    assert msg["Subject"] == "New form response from Bea"


@pytest.mark.parametrize("injection", ["\r\nBcc: evil@attacker.example", "\nBcc: evil@x.example"])
def test_subject_with_line_breaks_cannot_add_a_header(injection: str) -> None:
    msg = build(record(subject=f"Hello{injection}"))
    assert b"\nBcc:" not in raw(record(subject=f"Hello{injection}"))
    assert msg["Bcc"] is None
    assert msg["Subject"].startswith("Hello ")


def test_display_name_with_line_breaks_cannot_add_a_header() -> None:
    msg = build(record(to_name="Ann\r\nBcc: evil@attacker.example"))
    assert msg["Bcc"] is None
    assert b"\nBcc:" not in raw(record(to_name="Ann\r\nBcc: evil@attacker.example"))


@pytest.mark.parametrize("bad", ["", "no-at-sign", "two@@example.com", "a@b.example\r\nBcc: x@y"])
def test_bad_recipient_is_refused_without_echoing_it(bad: str) -> None:
    with pytest.raises(wire.BadAddress) as info:
        build(record(to_address=bad))
    assert "recipient" in str(info.value)
    if bad:
        assert bad not in str(info.value)


def test_one_line_collapses_every_break() -> None:
    assert wire.one_line("a\r\nb\nc\rd\u2028e") == "a b c d e"


# ---- templates --------------------------------------------------------------------------
# The names routing emits (streams/logic/transform.py email_content), written out.
ROUTED = ["form_response", "journey_progress", "wedding_date_change", "client_profile_update"]


@pytest.mark.parametrize("name", [*ROUTED, "generic"])
def test_every_routed_template_has_text_and_html(name: str) -> None:
    assert name in render.template_names()


def test_unknown_template_falls_back_to_generic() -> None:
    text, html = render.render("no_such_template", "Something happened", {})
    assert "Something happened" in text
    assert "<p>Something happened</p>" in html


def test_html_escapes_variables_and_text_keeps_them() -> None:
    text, html = render.render(
        "form_response", "s", {"client_name": "<script>alert(1)</script>", "form_name": "F"}
    )
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html
    assert "<script>alert(1)</script>" in text


@pytest.mark.parametrize(
    ("name", "variables", "expected"),
    [
        ("form_response", {"client_name": "Bea", "form_name": "Menu"}, "Menu"),
        ("journey_progress", {"milestone": "Contract signed", "new_percentage": "40"}, "40%"),
        ("wedding_date_change", {"new_date": "2027-06-12", "old_date": "2027-05-01"}, "2027-06-12"),
        ("client_profile_update", {"changed_fields": "guest_count"}, "guest_count"),
        ("generic", {"summary": "Vendor added"}, "Vendor added"),
    ],
)
def test_each_template_renders_its_variables(
    name: str, variables: dict[str, str], expected: str
) -> None:
    text, html = render.render(name, "subject", {"recipient_name": "Ann", **variables})
    assert expected in text
    assert expected in html
    assert text.startswith("Hi Ann,")


def test_a_missing_required_variable_is_refused_naming_only_the_variable() -> None:
    with pytest.raises(render.TemplateRefused) as info:
        render.render("form_response", "s", {"form_name": "secret-ish value"})
    assert "client_name" in str(info.value)
    assert "secret-ish value" not in str(info.value)


@pytest.mark.parametrize("link", ["javascript:alert(1)", "data:text/html,x"])
def test_non_http_links_are_dropped(link: str) -> None:
    _text, html = render.render("generic", "s", {"summary": "x", "link": link})
    assert "href" not in html


def test_https_link_is_kept() -> None:
    _text, html = render.render("generic", "s", {"summary": "x", "link": "https://app.example/f/1"})
    assert 'href="https://app.example/f/1"' in html


def test_non_ascii_name_and_subject_are_encoded_and_read_back() -> None:
    rec = record(to_name="Zoë Núñez", subject="Réponse de José")
    parsed = build(rec)
    assert parsed["Subject"] == "Réponse de José"
    assert parsed["To"].addresses[0].display_name == "Zoë Núñez"
    assert all(byte < 128 for byte in raw(rec).split(b"\n\n", 1)[0])


def test_text_template_has_a_blank_line_after_the_greeting() -> None:
    text, _html = render.render("generic", "s", {"recipient_name": "Ann", "summary": "News"})
    assert text.startswith("Hi Ann,\n\nNews\n")


def test_530_starttls_required_is_fatal_configuration_not_reauth() -> None:
    answer = wire.classify_reply(530, "5.7.0 Must issue a STARTTLS command first")
    assert answer.verdict is Verdict.FATAL
    assert answer.error_class == "smtp.530"
