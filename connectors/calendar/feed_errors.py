"""What a calendar fetch or channel call can end in besides success, each saying what the
feed does next (the fetchers translate provider answers into these, once, at the boundary).

    FetchError
     ├── FullResyncRequired   the cursor is no longer valid (Google 410, Graph 410 or
     │                        syncStateNotFound, CalDAV valid-sync-token): fetch everything
     │                        again and diff it against what is known; never an alert storm
     ├── ReauthRequired       the credential is refused (invalid_grant, 401): the calendar is
     │                        `reauth_required` until the vendor reconnects it
     ├── CalendarGone         the calendar was deleted or access lost (404, 403 on the
     │                        calendar): disable it, tombstone its intervals
     ├── Throttled            429/403 rate limits, Graph MailboxConcurrency: wait
     │                        `retry_after_s`, then try again
     └── FetchFailed          a transient failure (5xx, timeout, connection): retry with backoff
"""

from __future__ import annotations

from streams.errors import WedsyncError

from connectors.sinks.answer import Answer, Verdict


class FetchError(WedsyncError):
    """A fetch or channel call did not succeed; the subclass says what to do next."""


class FullResyncRequired(FetchError):
    """The stored cursor is refused: fetch the whole window again and diff it."""


class ReauthRequired(FetchError):
    """The provider refuses the credential: the vendor must reconnect the calendar."""


class CalendarGone(FetchError):
    """The calendar no longer exists or is no longer shared with us."""


class Throttled(FetchError):
    """The provider asks us to slow down for `retry_after_s` seconds."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class FetchFailed(FetchError):
    """A transient failure: retry later with backoff."""


def from_answer(answer: Answer, what: str) -> FetchError:
    """The feed's error for a sink-classified refusal (`connectors.sinks.answer`): the
    calendar connectors share one classification of provider answers."""
    code = answer.error_class or str(answer.status)
    message = f"{what}: {code}"
    if answer.verdict is Verdict.REAUTH:
        return ReauthRequired(message)
    if answer.verdict is Verdict.BACKPRESSURE:
        return Throttled(message, answer.retry_after if answer.retry_after is not None else 30.0)
    if answer.verdict is Verdict.RETRY:
        return FetchFailed(message)
    if answer.status in (403, 404):
        return CalendarGone(message)
    return FetchFailed(message)  # an unexpected refusal: retried with backoff, and counted
