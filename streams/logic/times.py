"""Reading a wedding's times. Pure: text in, aware datetimes out; never the host's zone.

A wedding's wall-clock times (`ceremony_time`, `setup_time`, `reception_time`: PostgreSQL
`time`) and naive timestamps are read in the wedding's IANA zone: the event's `time_zone`,
else the integration's configured one. What carries its own offset keeps it: a `timetz`
('14:30:00+02', '14:30:00.5-05:30') is placed at that offset, a `timestamptz`
('2026-06-01 12:00:00+00', ISO 8601 '2026-06-01T12:00:00Z') is that instant, and no zone is
needed for either.

Daylight-saving edges are resolved with fold=0 (PEP 495), so the same row always gives the
same instant:
- a wall-clock time that does not exist (spring forward: 01:30 on 28 March 2027 in London) is
  read with the offset in force before the change (GMT: 01:30 UTC, shown as 02:30 BST);
- an ambiguous one (fall back: 01:30 on 31 October 2027 in London) is its first occurrence
  (BST: 00:30 UTC).

Failure means `TimeRefused`, a `PoisonMessage` naming the event id, the field and the value:
a naive time with no zone known, an unknown zone, a value that is not a time. The event is
dead-lettered; guessing UTC or the host's zone would deliver a wrong time without a trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from streams.errors import PoisonMessage

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
# Names the tz database resolves that are not a place's zone: `localtime` is a link to the
# host's /etc/localtime, `posixrules` and `Factory` are tooling entries, `right/` zones count
# leap seconds (their instants are ~27 s off POSIX time).
_MAX_SHOWN = 80  # characters of a bad value quoted in an error (it lands in a DLQ header)
_NOT_A_WEDDING_ZONE = frozenset({"localtime", "posixrules", "Factory"})


class TimeRefused(PoisonMessage):
    """A time in an event cannot be placed on the timeline. Dead-letter the event."""

    def __init__(self, event_id: str, field: str, value: object, reason: str) -> None:
        shown = repr(value)
        if len(shown) > _MAX_SHOWN:
            shown = shown[: _MAX_SHOWN - 1] + "…"
        super().__init__(f"event {event_id}: {field} {shown}: {reason}")
        self.event_id = event_id
        self.field = field
        self.value = value


@lru_cache(maxsize=256)
def known_zone(name: str) -> ZoneInfo | None:
    """The IANA zone `name`; None when the tz database has no such place."""
    if name in _NOT_A_WEDDING_ZONE or name.startswith("right/"):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory, too long
        return None


def _in_zone(naive: datetime, tz: ZoneInfo) -> datetime:
    """Naive wall-clock `naive` in `tz`, fold=0, as the wall clock really shows it: a time in
    a spring-forward gap comes back moved forward by the gap (01:30 -> 02:30 BST)."""
    return naive.replace(tzinfo=tz, fold=0).astimezone(UTC).astimezone(tz)


@dataclass(frozen=True)
class WeddingClock:
    """Reads the times of one event (`event_id`) for a wedding whose zone is `zone_name`
    (None when neither the event nor the integration names one); `zone_field` is where the
    name came from, for error messages."""

    event_id: str
    zone_name: str | None
    zone_field: str = "time_zone"

    def zone(self, field: str, value: object = None) -> ZoneInfo:
        """The wedding's zone, needed to read `field` (holding `value`). Raises
        `TimeRefused` when no zone is known or the name is not an IANA zone."""
        if self.zone_name is None:
            raise TimeRefused(
                self.event_id,
                field,
                value,
                "no time zone for the wedding (neither the event's time_zone nor the "
                "integration's); never guessed as UTC or the host's zone",
            )
        found = known_zone(self.zone_name)
        if found is None:
            raise TimeRefused(
                self.event_id, self.zone_field, self.zone_name, "not an IANA time zone"
            )
        return found

    def time_of_day(self, field: str, value: object) -> time:
        """`value` (PostgreSQL `time` or `timetz` text) as a time, with its offset if any."""
        if not isinstance(value, str):
            raise TimeRefused(self.event_id, field, value, "not a time of day as text")
        try:
            return time.fromisoformat(value.strip())
        except ValueError as exc:
            raise TimeRefused(self.event_id, field, value, f"not a time of day: {exc}") from exc

    def on_day(self, day: date, field: str, value: object) -> datetime:
        """The instant of wall-clock `value` on `day`: at its own offset (timetz), else in
        the wedding's zone (fold=0 at DST edges, see the module docstring)."""
        at = self.time_of_day(field, value)
        if at.tzinfo is not None:
            return datetime.combine(day, at)
        return _in_zone(datetime.combine(day, at), self.zone(field, value))

    def instant(self, field: str, value: object) -> datetime:
        """`value` (timestamptz text, ISO 8601, or a naive timestamp read in the wedding's
        zone) as an aware datetime."""
        if not isinstance(value, str):
            raise TimeRefused(self.event_id, field, value, "not a timestamp as text")
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise TimeRefused(self.event_id, field, value, f"not a timestamp: {exc}") from exc
        if parsed.tzinfo is None:
            return _in_zone(parsed, self.zone(field, value))
        return parsed

    @staticmethod
    def epoch_ms(moment: datetime) -> int:
        """Milliseconds since the epoch of aware `moment`, exact (no float rounding)."""
        return (moment - _EPOCH) // _MS
