"""What a provider's answer means for the delivery, as plain data (no I/O).

Each connector's pure `wire.classify...` turns a provider answer (status, error code,
headers) into an `Answer` (from its own verdict tables: `from_verdict`); the runtime acts on
`Answer.verdict`:

    OK            delivered (or already there: a duplicate create, a delete of a gone item)
    RETRY         transient; retry with exponential, jittered backoff
    BACKPRESSURE  the provider asked us to slow down; retry no sooner than `retry_after` s
    FATAL         will never succeed as sent; dead-letter now with the reason
    DISABLE       this target is gone (410, archived channel, opted-out number): stop
                  sending to it, report it, keep its records replayable (dead letters)
    REAUTH        the credential was refused; refresh it once, then pause the integration
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    OK = "ok"
    RETRY = "retry"
    BACKPRESSURE = "backpressure"
    FATAL = "fatal"
    DISABLE = "disable"
    REAUTH = "reauth"


@dataclass(frozen=True)
class Answer:
    """A classified provider answer.

    `error_class` is a short code from a closed set (e.g. ``slack.ratelimited``,
    ``http.503``, ``smtp.4xx``): it becomes a dead-letter header and a ledger field, and may
    become a metric label, so never put ids, addresses or free text in it. `message` is for
    humans: no secrets, tokens, URLs with credentials or payload PII."""

    verdict: Verdict
    status: int | None = None
    error_class: str | None = None
    message: str = ""
    retry_after: float | None = None
    provider_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.OK


def ok(status: int | None = None, provider_id: str | None = None) -> Answer:
    return Answer(Verdict.OK, status=status, provider_id=provider_id)


def retry(error_class: str, message: str = "", *, status: int | None = None) -> Answer:
    return Answer(Verdict.RETRY, status=status, error_class=error_class, message=message)


def backpressure(
    error_class: str, retry_after: float | None, message: str = "", *, status: int | None = None
) -> Answer:
    return Answer(
        Verdict.BACKPRESSURE,
        status=status,
        error_class=error_class,
        message=message,
        retry_after=retry_after,
    )


def fatal(error_class: str, message: str = "", *, status: int | None = None) -> Answer:
    return Answer(Verdict.FATAL, status=status, error_class=error_class, message=message)


def disable(error_class: str, message: str = "", *, status: int | None = None) -> Answer:
    return Answer(Verdict.DISABLE, status=status, error_class=error_class, message=message)


def reauth(error_class: str, message: str = "", *, status: int | None = None) -> Answer:
    return Answer(Verdict.REAUTH, status=status, error_class=error_class, message=message)


def from_verdict(
    verdict: Verdict,
    error_class: str,
    message: str = "",
    *,
    status: int | None = None,
    retry_after: float | None = None,
) -> Answer:
    """The Answer of a verdict a connector's table decided (OK carries only the status;
    `retry_after` only BACKPRESSURE)."""
    if verdict is Verdict.OK:
        return ok(status)
    if verdict is Verdict.BACKPRESSURE:
        return backpressure(error_class, retry_after, message, status=status)
    make = {Verdict.RETRY: retry, Verdict.REAUTH: reauth, Verdict.DISABLE: disable}
    return make.get(verdict, fatal)(error_class, message, status=status)


def parse_retry_after(value: str | None, *, now_s: float | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date. None when absent or
    unreadable; never negative."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    import time

    now = time.time() if now_s is None else now_s
    return max(0.0, when.timestamp() - now)


def classify_http_status(
    status: int, retry_after: float | None = None, prefix: str = "http"
) -> Answer:
    """The generic meaning of an HTTP status when a provider says nothing more specific:
    2xx ok; 3xx fatal (redirects are never followed); 401 re-auth; 408/425/5xx retry;
    429 backpressure; 410 disable; other 4xx fatal."""
    code = f"{prefix}.{status}"
    if 200 <= status < 300:
        return ok(status)
    if status == 429 or (status == 503 and retry_after is not None):
        return backpressure(code, retry_after, status=status)
    if status in (408, 425) or status >= 500:
        return retry(code, status=status)
    if status == 401:
        return reauth(code, status=status)
    if status == 410:
        return disable(code, "the target answered 410 Gone", status=status)
    if 300 <= status < 400:
        return fatal(code, "redirect refused: redirects are never followed", status=status)
    return fatal(code, status=status)
