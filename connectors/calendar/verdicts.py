"""A verdict from a calendar provider's table, as the `Answer` the runtime acts on. Pure.

Each calendar wire keeps its own tables and its own order of reading them (Google: its
``errors[0].reason``, then the status; Graph: the status, then its ``error.code``; CalDAV:
the status) and decides a `Verdict` and an error class; `answer` makes the Answer of them,
written once for the three. `refusal` is the human message the JSON providers give."""

from __future__ import annotations

from connectors.sinks.answer import (
    Answer,
    Verdict,
    backpressure,
    disable,
    fatal,
    ok,
    reauth,
    retry,
)


def answer(
    verdict: Verdict,
    error_class: str,
    message: str = "",
    *,
    status: int | None = None,
    retry_after: float | None = None,
) -> Answer:
    """The Answer of `verdict` (OK carries only the status; `retry_after` only
    BACKPRESSURE)."""
    if verdict is Verdict.OK:
        return ok(status)
    if verdict is Verdict.BACKPRESSURE:
        return backpressure(error_class, retry_after, message, status=status)
    make = {Verdict.RETRY: retry, Verdict.REAUTH: reauth, Verdict.DISABLE: disable}
    return make.get(verdict, fatal)(error_class, message, status=status)


def refusal(provider: str, verdict: Verdict, status: int) -> str:
    """What `provider` (``Google``, ``Graph``) refusing with `verdict` means, for humans:
    a refused access token, or a refused request; nothing for a transient answer."""
    if verdict is Verdict.REAUTH:
        return f"{provider} refused the access token"
    if verdict is Verdict.FATAL:
        return f"{provider} refused the request ({status})"
    return ""
