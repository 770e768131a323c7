"""Per-destination payload builders. Pure: a domain event (and target details) in, the
content fields of one delivery record out.

PII minimization is by construction: every builder names the fields it copies (allow-lists,
never "everything but"); generic fallbacks go through `safe_items`, which drops any key that
looks like contact data or a credential. Couples' email addresses and phone numbers never
reach Slack, SMS, in-app, calendars, CRMs or webhook bodies.

Times are read by `streams.logic.times`: wall-clock times and naive timestamps in the
wedding's zone (the event's `time_zone`, else the integration's), never the host's. The
calendar and CRM builders raise `TimeRefused` (a `PoisonMessage`: dead-letter the event) when
a time cannot be placed: no zone known, an unknown zone, a value that is not a time.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from streams.logic import wording
from streams.logic.times import TimeRefused, WeddingClock, known_zone
from streams.models import CrmValue, DomainEvent, PayloadValue

SLACK_MAX_BLOCKS = 50
SLACK_MAX_SECTION = 3000
SLACK_MAX_HEADER = 150
SMS_MAX = 480
TIMED_EVENT_HOURS = 8  # a timed wedding-day booking spans this long from the ceremony

_PII_MARKERS = (
    "email",
    "phone",
    "mobile",
    "address",
    "secret",
    "token",
    "password",
    "credential",
    "api_key",
)


@lru_cache(maxsize=4096)
def is_sensitive(key: str) -> bool:
    """True for keys that must never leave in a notification (contact data, secrets)."""
    lowered = key.lower()
    return any(marker in lowered for marker in _PII_MARKERS)


def safe_items(payload: dict[str, PayloadValue]) -> list[tuple[str, PayloadValue]]:
    """The payload's fields minus sensitive ones, sorted by key."""
    return sorted((k, v) for k, v in payload.items() if not is_sensitive(k))


def _s(payload: dict[str, PayloadValue], key: str, default: str = "") -> str:
    value = payload.get(key)
    if value is None:
        return default
    if isinstance(value, list):
        return ", ".join(value)
    return str(value)


def _scalar(value: PayloadValue) -> CrmValue:
    return ", ".join(value) if isinstance(value, list) else value


def _int_or_none(value: PayloadValue) -> CrmValue:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value) if not isinstance(value, list) else None
    except ValueError:
        return None


# ---- vendor CRMs ---------------------------------------------------------------------------
# The CRM and venue payloads carry the wedding's date and times as the platform stores them
# (a `date`, `time` or `timetz` column's text), as the platform's own transforms did: a
# wall-clock time needs no zone to be passed on, and the platform stores none.
def photography_crm_payload(event: DomainEvent) -> dict[str, CrmValue]:
    """The generic photography-CRM webhook body (DOMAIN.md), exactly these nine fields.
    `updated_at` is ISO 8601 in UTC when it carries an offset (timestamptz), else as stored."""
    p = event["payload"]
    kind = {
        "form.response_received": "form_response",
        "wedding.date_changed": "wedding_date_changed",
    }.get(event["event_type"], event["event_type"])
    return {
        "event_type": kind,
        "wedding_id": _scalar(p.get("wedding_id")),
        "client_name": _scalar(p.get("client_name")),
        "wedding_date": _scalar(p.get("new_date") or p.get("wedding_date")),
        "ceremony_time": _stored(p, "ceremony_time"),
        "venue_name": _scalar(p.get("venue_name")),
        "guest_count": _int_or_none(p.get("guest_count")),
        "photographer_notes": _scalar(p.get("photographer_notes")),
        "updated_at": _updated_at(event),
    }


def venue_booking_payload(event: DomainEvent) -> dict[str, CrmValue]:
    """The venue booking system body (DOMAIN.md), exactly these nine fields; dates and times
    as in `photography_crm_payload`."""
    p = event["payload"]
    reception = "reception_time" if p.get("reception_time") is not None else "reception_start"
    return {
        "booking_id": _scalar(p.get("booking_id") or p.get("wedding_id")),
        "event_date": _scalar(p.get("new_date") or p.get("wedding_date")),
        "party_size": _int_or_none(p.get("guest_count")),
        "setup_time": _stored(p, "setup_time"),
        "ceremony_start": _stored(p, "ceremony_time"),
        "reception_start": _stored(p, reception),
        "special_requirements": _scalar(p.get("special_requirements")),
        "coordinator_notes": _scalar(p.get("coordinator_notes")),
        "last_updated": _updated_at(event),
    }


def _stored(p: dict[str, PayloadValue], field: str) -> str | None:
    """A date or time column's text as stored; None when absent or empty."""
    value = p.get(field)
    if value is None or value == "" or isinstance(value, list | bool):
        return None
    return str(value)


def _updated_at(event: DomainEvent) -> str:
    """The row's `updated_at`: ISO 8601 in UTC when it carries an offset, else as stored;
    the event's time (UTC) when the row has none."""
    value = event["payload"].get("updated_at")
    if value is None or value == "" or not isinstance(value, str):
        return _iso_utc(event["occurred_at_ms"])
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return value  # a form Python cannot read (e.g. a year past 9999): passed as stored
    if parsed.tzinfo is None:
        return parsed.isoformat()
    return parsed.astimezone(UTC).isoformat()


def email_marketing_payload(event: DomainEvent) -> dict[str, CrmValue]:
    """Trigger for an email-marketing platform: which client reached which milestone."""
    p = event["payload"]
    return {
        "event_type": event["event_type"],
        "supplier_id": _scalar(p.get("supplier_id")),
        "client_id": _scalar(p.get("client_id")),
        "journey_id": _scalar(p.get("journey_id")),
        "milestone": _scalar(p.get("milestone")),
        "completion_percentage": _scalar(p.get("new_percentage")),
    }


def _wedding_clock(event: DomainEvent, default_zone: str | None) -> WeddingClock:
    """The clock reading `event`'s times: the zone its payload names, else `default_zone`
    (the integration's). A payload `time_zone` that is not text is refused."""
    named = event["payload"].get("time_zone")
    if named is not None and named != "":
        if not isinstance(named, str):
            raise TimeRefused(event["event_id"], "time_zone", named, "not a zone name")
        return WeddingClock(event["event_id"], named)
    return WeddingClock(event["event_id"], default_zone or None, "integration time_zone")


def _wedding_day(p: dict[str, PayloadValue]) -> date | None:
    """The wedding's (new) date; None when the payload carries no readable one."""
    raw = p.get("new_date") or p.get("wedding_date")
    try:
        return date.fromisoformat(str(raw)[:10])
    except ValueError:
        return None


def _iso_utc(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat()


# ---- email -----------------------------------------------------------------------------------
def email_content(event: DomainEvent, to_name: str | None) -> tuple[str, str, dict[str, str]]:
    """(template, subject, variables) for one recipient; dates read as 'Saturday 12 June
    2027', the couple by name (routing fills `client_name` from its state)."""
    p = event["payload"]
    et = event["event_type"]
    greeting = {"recipient_name": to_name or ""}
    client = _s(p, "client_name")
    if et == "form.response_received":
        client = client or "A client"
        return (
            "form_response",
            f"New form response from {client}",
            {
                **greeting,
                "client_name": client,
                "form_name": _s(p, "form_name"),
                "form_id": _s(p, "form_id"),
                "form_response_id": _s(p, "form_response_id"),
                "link": _link(event),
            },
        )
    if et == "journey.milestone_completed":
        milestone = _s(p, "milestone", "A milestone")
        for_client = f" for {client}" if client else ""
        return (
            "journey_progress",
            f"Journey milestone completed{for_client}: {milestone}",
            {
                **greeting,
                "milestone": milestone,
                "client_name": client,
                "client_id": _s(p, "client_id"),
                "old_percentage": _s(p, "old_percentage"),
                "new_percentage": _s(p, "new_percentage"),
                "link": _link(event),
            },
        )
    if et == "wedding.date_changed":
        return (
            "wedding_date_change",
            f"{_wedding_of(client)} moved to {wording.long_date(p.get('new_date'))}",
            {
                **greeting,
                "client_name": client,
                "old_date": wording.long_date(p.get("old_date")),
                "new_date": wording.long_date(p.get("new_date")),
                "ceremony_time": wording.clock(p.get("ceremony_time")),
                "venue_name": _s(p, "venue_name"),
                "link": _link(event),
            },
        )
    if et == "client.profile_updated":
        return (
            "client_profile_update",
            f"{client or 'A client'} updated their profile",
            {
                **greeting,
                "client_name": client,
                "client_id": _s(p, "client_id"),
                "changed_fields": wording.field_names(p.get("changed_fields")),
                "link": _link(event),
            },
        )
    summary = summary_text(event)
    if et in _NAMED_ONLY:  # the summary says it all; ids stay out of the body
        return "generic", _title(event), {**greeting, "summary": summary}
    return (
        "generic",
        summary,
        {
            **greeting,
            "event_type": et,
            "summary": summary,
            **{k: _s(p, k) for k, _ in safe_items(p)},
        },
    )


# ---- human text shared by Slack, SMS and in-app -----------------------------------------------
_TITLES = {
    "form.response_received": "New form response",
    "journey.milestone_completed": "Journey milestone completed",
    "wedding.date_changed": "Wedding date changed",
    "client.profile_updated": "Client profile updated",
    "booking.conflict_detected": "Double booking",
    "booking.conflict_possible": "Possible double booking",
    "booking.conflict_resolved": "Double booking resolved",
    "calendar.drift_detected": "Calendar event changed",
    "calendar.protection_degraded": "Calendar sync needs attention",
    "booking.updated": "Booking changed",
    "vendor.status_changed": "Vendor status changed",
}
# event types whose payload is ids and times: every message says it in words, never a dump
_NAMED_ONLY = frozenset({
    "booking.conflict_detected",
    "booking.conflict_possible",
    "booking.conflict_resolved",
    "booking.updated",
    "calendar.drift_detected",
    "calendar.protection_degraded",
})  # fmt: skip


def _ceremony(p: dict[str, PayloadValue]) -> str:
    """', ceremony at 14:00' (the stored wall-clock time), '' without one."""
    at = wording.clock(p.get("ceremony_time"))
    return f", ceremony at {at}" if at else ""


def _wedding_of(client: str) -> str:
    return f"{client}'s wedding" if client else "The wedding"


def _title(event: DomainEvent) -> str:
    """A short title (in-app, Slack header, email subject of a notice)."""
    p, et = event["payload"], event["event_type"]
    if et == "booking.conflict_detected":
        day = wording.long_date(p.get("starts_at"))
        return f"Double booking on {day}" if day else "Double booking"
    if et == "booking.updated":
        if p.get("cancelled") is True:
            return "Booking cancelled"
        return "New booking" if p.get("new") is True else "Booking changed"
    return _TITLES.get(et) or et.split(".")[-1].replace("_", " ").capitalize()


def summary_text(event: DomainEvent) -> str:
    """One line saying what happened, naming people, dates and times as the recipient
    knows them; never contact data, never an internal id."""
    p = event["payload"]
    et = event["event_type"]
    client = _s(p, "client_name")
    if et == "form.response_received":
        return f"New form response from {client or 'a client'}"
    if et == "journey.milestone_completed":
        for_client = f" for {client}" if client else ""
        return (
            f"Journey milestone completed{for_client}: {_s(p, 'milestone', 'milestone')} "
            f"({_s(p, 'new_percentage')}%)"
        )
    if et == "wedding.date_changed":
        return (
            f"{_wedding_of(client)} moved from {wording.long_date(p.get('old_date'))} to "
            f"{wording.long_date(p.get('new_date'))}{_ceremony(p)}. Please update your calendar."
        )
    if et == "client.profile_updated":
        fields = wording.field_names(p.get("changed_fields"))
        return f"{client or 'A client'} updated their profile: {fields}"
    if et in ("booking.conflict_detected", "booking.conflict_possible"):
        return wording.double_booking_for_vendor(p)
    if et == "booking.conflict_resolved":
        return wording.conflict_resolved(p)
    if et == "calendar.drift_detected":
        return wording.drift_detected(p)
    if et == "calendar.protection_degraded":
        return wording.protection_degraded(p)
    if et == "booking.updated":
        return wording.booking_changed(p)
    if et == "vendor.status_changed":
        return f"Vendor status changed to {_s(p, 'new_status')}"
    return et.replace(".", " ").replace("_", " ").capitalize()


def _link(event: DomainEvent) -> str:
    p = event["payload"]
    if p.get("wedding_id"):
        return f"/weddings/{p['wedding_id']}"
    if p.get("client_id"):
        return f"/clients/{p['client_id']}"
    return f"/{event['aggregate_type']}s/{event['aggregate_id']}"


def sms_text(event: DomainEvent) -> str:
    """SMS body, at most 480 characters."""
    text = summary_text(event)
    return text if len(text) <= SMS_MAX else text[: SMS_MAX - 1] + "…"


def inapp_content(event: DomainEvent) -> tuple[str, str, str | None, dict[str, str]]:
    """(title, body, link, data) of an in-app notification."""
    data = {k: _s(event["payload"], k) for k, _ in safe_items(event["payload"])}
    return _title(event), summary_text(event), _link(event), data


def couple_conflict_content(
    event: DomainEvent, client_id: str, vendor_name: str | None
) -> tuple[str, str, str | None, dict[str, str]]:
    """(title, body, link, data) of the in-app notice telling couple `client_id` that their
    vendor is double-booked: their own booking's time, the vendor's business name, and
    nothing of the vendor's other booking (not its couple, time or ids)."""
    p = event["payload"]
    mine = "" if p.get("client_id") == client_id else "conflicting_"
    wedding = p.get(f"{mine}wedding_id")
    body = wording.double_booking_for_couple(
        vendor_name, p.get(f"{mine}starts_at"), p.get(f"{mine}ends_at")
    )
    link = f"/weddings/{wedding}" if isinstance(wedding, str) and wedding else None
    data = {"supplier_id": _s(p, "supplier_id"), "wedding_id": _s(p, f"{mine}wedding_id")}
    return "Vendor scheduling conflict", body, link, data


# ---- Slack -----------------------------------------------------------------------------------
def _section(text: str) -> dict[str, Any]:
    if len(text) > SLACK_MAX_SECTION:
        text = text[: SLACK_MAX_SECTION - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text[:SLACK_MAX_HEADER]}}


def slack_blocks(event: DomainEvent) -> list[dict[str, Any]]:
    """Block Kit blocks: at most 50 blocks, at most 3,000 characters per section."""
    p = event["payload"]
    et = event["event_type"]
    if et == "form.response_received":
        blocks = [
            _header("New form response"),
            _section(
                f"*{_s(p, 'client_name', 'A client')}* answered *{_s(p, 'form_name', 'a form')}*."
            ),
        ]
    elif et == "wedding.date_changed":
        old, new = wording.long_date(p.get("old_date")), wording.long_date(p.get("new_date"))
        blocks = [
            _header("Wedding date changed"),
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*Old date:*\n{old}"},
                    {"type": "mrkdwn", "text": f"*New date:*\n{new}"},
                ],
            },
            _section(
                f"{_s(p, 'client_name', 'The couple')} at {_s(p, 'venue_name', 'the venue')}"
                f"{_ceremony(p)}"
            ),
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": "Please update your calendar."}],
            },
        ]
    elif et in _TITLES:
        blocks = [_header(_title(event)), _section(summary_text(event))]
    else:
        blocks = [_header(summary_text(event))]
        blocks += [_section(f"*{k}:* {_s(p, k)}") for k, _ in safe_items(p)]
    return blocks[:SLACK_MAX_BLOCKS]


def slack_content(event: DomainEvent) -> tuple[str, str]:
    """(fallback text, blocks as a JSON array) of a Slack message."""
    blocks = json.dumps(slack_blocks(event), separators=(",", ":"), ensure_ascii=False)
    return summary_text(event), blocks


# ---- calendars -------------------------------------------------------------------------------
def external_event_id(*parts: str) -> str:
    """Idempotent calendar event id: base32hex (0-9a-v), 32 characters, Google-compatible.

    Derived from the wedding and the target, not the event, so a later change updates the
    same calendar event instead of adding one."""
    digest = hashlib.blake2b("|".join(parts).encode(), digest_size=20).digest()
    return base64.b32hexencode(digest).decode().lower().rstrip("=")


def calendar_fields(event: DomainEvent, fallback_zone: str | None) -> dict[str, Any] | None:
    """Title, description, location, the wedding's local start and end, and, where they are
    known, the instants and the zone, for the wedding in `event`; None when the event
    carries no usable date.

    With a ceremony time the event starts then and lasts TIMED_EVENT_HOURS; without one it
    is an all-day event (local_start the day, local_end the day after). The platform stores
    wall-clock times and no zone: the zone is the wedding's when the source names one (a
    `time_zone` column mapped in the contract; then the instants are set here), else the
    calendar's own, which the sink asks the calendar for, else `fallback_zone` (the
    integration's configured zone or the deployment's default). A `timetz` ceremony keeps
    its own offset. Raises `TimeRefused` for an unknown zone name or an unreadable time."""
    p = event["payload"]
    day = _wedding_day(p)
    if day is None:
        return None
    clock = _wedding_clock(event, None)
    if fallback_zone is not None and known_zone(fallback_zone) is None:
        raise TimeRefused(event["event_id"], "fallback_time_zone", fallback_zone,
                          "not an IANA time zone")  # fmt: skip
    ceremony = p.get("ceremony_time")
    timed = ceremony is not None and ceremony != ""
    starts = ends = None
    named = clock.zone_name
    if timed:
        at = clock.time_of_day("ceremony_time", ceremony)
        local = datetime.combine(day, at.replace(tzinfo=None))
        local_start = local.isoformat()
        local_end = (local + timedelta(hours=TIMED_EVENT_HOURS)).isoformat()
        if at.tzinfo is not None or named is not None:
            starts = clock.epoch_ms(clock.on_day(day, "ceremony_time", ceremony))
            ends = starts + TIMED_EVENT_HOURS * 3_600_000
    else:
        local_start, local_end = day.isoformat(), (day + timedelta(days=1)).isoformat()
        if named is not None:
            tz = clock.zone("wedding_date", str(day))
            starts = clock.epoch_ms(datetime.combine(day, time(0), tzinfo=tz))
            ends = clock.epoch_ms(datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz))
    if named is not None:
        clock.zone("time_zone", named)  # an unknown name is refused here
    client = _s(p, "client_name")
    return {
        "title": f"Wedding: {client}" if client else "Wedding",
        "description": "Date changed from " + _s(p, "old_date") if p.get("old_date") else None,
        "location": _s(p, "venue_name") or None,
        "starts_at_ms": starts,
        "ends_at_ms": ends,
        "time_zone": named,
        "all_day": not timed,
        "local_start": local_start,
        "local_end": local_end,
        "fallback_time_zone": fallback_zone,
    }


# ---- outbound webhooks -----------------------------------------------------------------------
def webhook_body(event: DomainEvent, event_name: str) -> str:
    """The exact JSON body of an outbound customer webhook: envelope plus the allow-listed
    row columns normalize put in the payload as 'row.<column>' (sensitive ones dropped)."""
    p = event["payload"]
    data = {k[4:]: v for k, v in p.items() if k.startswith("row.") and not is_sensitive(k)}
    body = {
        "id": event["event_id"],
        "event": event_name,
        "occurred_at_ms": event["occurred_at_ms"],
        "record_id": p.get("record_id"),
        "changed_fields": p.get("changed_fields") or [],
        "data": data,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
