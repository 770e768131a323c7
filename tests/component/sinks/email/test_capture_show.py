"""What `wedsync fake smtp` prints per captured message: the headers always, the body on a
terminal only."""

from __future__ import annotations

import sys

import pytest
from connectors.sinks.email import wire
from streams.dev.fakes.email import Captured, show


def _captured() -> Captured:
    message = wire.build_message(
        {"to_address": "ann@example.com", "to_name": "Ann", "subject": "Réponse de Béa",
         "template": "form_response"},
        "Béa answered the questionnaire.", "<p>Béa answered</p>",
        idempotency_key="dlv-9", from_address="notify@wedsync.example", from_name="WedSync",
        message_id_domain="mail.wedsync.example",
    )  # fmt: skip
    return Captured(message.sender, (message.recipient,), message.data)


def test_piped_it_prints_the_headers_decoded_and_not_the_body(
    capsys: pytest.CaptureFixture[str],
) -> None:
    show(_captured())
    out = capsys.readouterr().out
    assert "<dlv-9@mail.wedsync.example> template=form_response" in out
    assert "Subject: Réponse de Béa" in out
    assert "questionnaire" not in out


def test_on_a_terminal_it_prints_the_plain_body_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    show(_captured())
    assert "Béa answered the questionnaire." in capsys.readouterr().out
