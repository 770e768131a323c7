"""The cached-header email policy: the same messages as email's default, header classes made
once."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

from streams.logic.mime import POLICY


def _compose(policy: email.policy.Policy) -> bytes:
    msg = EmailMessage(policy=policy)
    msg["From"] = "WedSync <notify@wedsync.example>"
    msg["To"] = "Ann Vendor <ann@example.com>"
    msg["Subject"] = "Nouvelle réponse — Béa & Léo"
    msg["Message-ID"] = "<dlv-1@mail.wedsync.example>"
    msg["X-WedSync-Template"] = "form_response"
    msg.set_content("Bonjour Ann,\nBéa a répondu.\n", subtype="plain", charset="utf-8")
    msg.add_alternative("<p>Béa a répondu &amp; plus</p>", subtype="html", charset="utf-8")
    msg.set_boundary("===b0undary==")  # else random: the two would differ there alone
    return msg.as_bytes()


def test_a_message_composed_with_it_is_byte_for_byte_the_default_policys() -> None:
    assert _compose(POLICY) == _compose(email.policy.default)


def test_a_message_parsed_with_it_reads_as_with_the_default_policy() -> None:
    raw = _compose(email.policy.default)
    ours = email.message_from_bytes(raw, policy=POLICY)
    theirs = email.message_from_bytes(raw, policy=email.policy.default)
    assert [(k, str(v)) for k, v in ours.items()] == [(k, str(v)) for k, v in theirs.items()]
    assert isinstance(ours, EmailMessage) and isinstance(theirs, EmailMessage)
    ours_body, theirs_body = ours.get_body(("plain",)), theirs.get_body(("plain",))
    assert ours_body is not None and theirs_body is not None
    assert ours_body.get_content() == theirs_body.get_content()


def test_each_header_class_is_made_once_per_name() -> None:
    factory = POLICY.header_factory
    assert factory["Subject"] is factory["subject"]
    assert factory["Content-Type"] is factory["CONTENT-TYPE"]


def test_header_names_beyond_the_bound_are_still_served() -> None:
    factory = POLICY.header_factory
    names = [f"X-Sender-Chosen-{n}" for n in range(400)]
    assert all(factory(name, "v").name == name for name in names)
