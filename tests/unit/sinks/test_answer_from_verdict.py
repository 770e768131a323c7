"""A verdict from a connector's table as the Answer the runtime acts on
(connectors/sinks/answer.py `from_verdict`)."""

from __future__ import annotations

import pytest
from connectors.sinks.answer import Verdict, from_verdict


@pytest.mark.parametrize("verdict", [Verdict.RETRY, Verdict.REAUTH, Verdict.DISABLE,
                                     Verdict.FATAL])  # fmt: skip
def test_a_refusal_keeps_its_verdict_class_message_and_status(verdict: Verdict) -> None:
    answer = from_verdict(verdict, "p.code", "what it means", status=418, retry_after=5.0)
    assert (answer.verdict, answer.error_class, answer.message, answer.status) == (
        verdict, "p.code", "what it means", 418,
    )  # fmt: skip
    assert answer.retry_after is None  # only backpressure waits


def test_backpressure_carries_retry_after() -> None:
    answer = from_verdict(Verdict.BACKPRESSURE, "p.429", status=429, retry_after=7.0)
    assert (answer.verdict, answer.retry_after, answer.status) == (Verdict.BACKPRESSURE, 7.0, 429)


def test_ok_carries_only_the_status() -> None:
    answer = from_verdict(Verdict.OK, "p.409", "duplicate", status=409)
    assert answer.ok and answer.status == 409
    assert (answer.error_class, answer.message) == (None, "")
