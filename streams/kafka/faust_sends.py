"""What became of the worker's sends: the first one the broker refused.

Faust hands an agent's send to aiokafka and returns; when the broker later refuses the
record (MESSAGE_TOO_LARGE, NOT_ENOUGH_REPLICAS past the retries, a broker unavailable past
the request timeout) Faust only logs a warning (`Topic._on_published`) and calls its sensors'
`on_send_error`. The record the event came from was acked meanwhile, so the next commit went
past it: the event was lost, silently. `SendFailures` is that sensor; the worker's consumer
(`streams.kafka.faust_transport`) asks it before every commit and, once a send failed, never
commits again and stops the worker (the input is read again from the last commit after a
restart: at-least-once)."""

from __future__ import annotations

from typing import Any

import faust

from streams.errors import EventsNotWritten


class SendFailures(faust.Sensor):
    """Remembers the first send the broker refused."""

    def __init__(self) -> None:
        super().__init__()
        self.first: EventsNotWritten | None = None

    def on_send_error(self, producer: Any, exc: BaseException, state: Any) -> None:
        self.refused(exc)

    def refused(self, exc: BaseException) -> None:
        """A send the broker refused (Faust's, or `streams.kafka.faust_output`'s)."""
        if self.first is None:
            self.first = events_not_written(exc)


def events_not_written(exc: BaseException) -> EventsNotWritten:
    """The error that stops the worker, saying what to do about `exc`."""
    name = type(exc).__name__
    if "TooLarge" in name or "SIZE_TOO_LARGE" in str(exc):
        advice = (
            "an event is larger than the topic accepts: raise the topic's max.message.bytes "
            "(kafka-configs --alter --entity-type topics --add-config max.message.bytes=...) "
            "or the broker's message.max.bytes, then start the worker again"
        )
    else:
        advice = "check that the cluster is up and its topics writable, then start the worker again"
    return EventsNotWritten(
        f"the broker refused an event the worker produced ({name}: {exc}); the worker "
        f"stopped without committing the records it came from, so nothing is lost: {advice}"
    )
