"""What recipients read: every message names people, dates and times as they know them
(the couple's names, 'Saturday 12 June 2027', '14:00' as the wedding stores it, the vendor's
business name), never an internal id. Realistic data: uuids as ids, non-ASCII names."""

from __future__ import annotations

import json
import uuid

from connectors.sinks.email.render import render
from streams.logic import transform
from streams.logic.conflicts import apply_booking, booking_notice
from streams.logic.routing import Delivery, load_rules, route
from streams.logic.state import StateTables
from streams.models import DomainEvent, PayloadValue
from streams.topics import Destination

from tests.unit.logic.factories import event, state_with, supplier_row

PHOTO, COUPLE_A, COUPLE_B = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
WEDDING_A, WEDDING_B = str(uuid.uuid4()), str(uuid.uuid4())
BOOKING_A, BOOKING_B = f"tave-1-{WEDDING_A[:8]}", f"tave-2-{WEDDING_A[:8]}"
IDS = (PHOTO, COUPLE_A, COUPLE_B, WEDDING_A, WEDDING_B, BOOKING_A, BOOKING_B)


def state(*, first_wedding: bool = True, second_wedding: bool = True) -> StateTables:
    """A photographer ('Lumière Photography', every channel) and two couples' weddings."""
    prefs = {"realtime_channels": ["email", "slack", "in-app", "sms"], "slack_channel": "C-PH",
             "phone": "+447700900001"}  # fmt: skip
    rows = [("suppliers", supplier_row(PHOTO, business_name="Lumière Photography",
                                       notification_preferences=json.dumps(prefs)))]  # fmt: skip
    if first_wedding:
        rows.append(("wedding_details", {"id": WEDDING_A, "couple_id": COUPLE_A,
                                         "bride_name": "Zoë", "groom_name": "Łukasz",
                                         "wedding_date": "2027-06-19",
                                         "ceremony_time": "14:00:00"}))  # fmt: skip
    if second_wedding:
        rows.append(("wedding_details", {"id": WEDDING_B, "couple_id": COUPLE_B,
                                         "bride_name": "Alex", "groom_name": "Sam",
                                         "wedding_date": "2027-06-19"}))  # fmt: skip
    return state_with(*rows)


def booking(booking_id: str, wedding: str, couple: str, start: str, end: str,
            version: int, **extra: PayloadValue) -> DomainEvent:  # fmt: skip
    ev = event("booking.changed", {
        "booking_id": booking_id, "supplier_id": PHOTO, "wedding_id": wedding,
        "client_id": couple, "starts_at": start, "ends_at": end,
        "time_zone": "Europe/London", "cancelled": False, **extra},
        aggregate_id=booking_id, event_id=str(uuid.uuid4()))  # fmt: skip
    ev["aggregate_version"] = version
    ev["occurred_at_ms"] = 1_780_000_000_000  # May 2026: both bookings are still to come
    return ev


def double_booking(**second: PayloadValue) -> DomainEvent:
    """The conflict the detector reports when booking B (16:00-23:00) lands on A (13:00)."""
    first = booking(BOOKING_A, WEDDING_A, COUPLE_A, "2027-06-19T13:00", "2027-06-19T23:00", 1)
    later = booking(BOOKING_B, WEDDING_B, COUPLE_B, "2027-06-19T16:00", "2027-06-19T23:00", 2,
                    **second)  # fmt: skip
    stored, _ = apply_booking(None, first, supplier_id=PHOTO)
    _, found = apply_booking(stored, later, supplier_id=PHOTO)
    assert len(found) == 1
    return found[0]


def delivered(ev: DomainEvent, tables: StateTables, dest: Destination,
              to: str = PHOTO) -> Delivery:  # fmt: skip
    found = [d for d in route(ev, tables, load_rules(), 0)
             if d.destination is dest and d.record["recipient_id"] == to]  # fmt: skip
    assert len(found) == 1, found
    return found[0]


def no_ids(text: str) -> bool:
    return not any(i in text for i in IDS)


# ---- the double booking, as the vendor reads it ------------------------------------------------
def test_double_booking_inapp_names_both_couples_with_date_and_times() -> None:
    record = delivered(double_booking(), state(), Destination.INAPP).record
    assert record["body"].startswith(
        "Double booking: Alex & Sam on Saturday 19 June 2027, 16:00-23:00 overlaps "
        "Zoë & Łukasz on Saturday 19 June 2027, 13:00-23:00."
    )


def test_double_booking_inapp_never_shows_a_booking_or_wedding_id() -> None:
    record = delivered(double_booking(), state(), Destination.INAPP).record
    assert no_ids(record["title"] + record["body"])


def test_double_booking_notice_says_what_to_do() -> None:
    body = delivered(double_booking(), state(), Destination.INAPP).record["body"]
    assert body.endswith("Please contact the couples to rearrange, or arrange cover for one "
                         "of the weddings.")  # fmt: skip


def test_double_booking_with_an_unknown_couple_describes_that_booking_neutrally() -> None:
    body = delivered(double_booking(), state(first_wedding=False), Destination.SMS).record["text"]
    assert body.startswith(
        "Double booking: Alex & Sam on Saturday 19 June 2027, 16:00-23:00 "
        "overlaps another booking on Saturday 19 June 2027, 13:00-23:00."
    )
    assert no_ids(body)


def test_double_booking_takes_the_couple_name_the_crm_sent() -> None:
    tables = state(second_wedding=False)
    text = delivered(double_booking(client_name="Maëlle & Øystein"), tables,
                     Destination.SMS).record["text"]  # fmt: skip
    assert "Maëlle & Øystein on Saturday 19 June 2027, 16:00-23:00" in text


def test_double_booking_email_subject_names_the_day_and_body_both_bookings() -> None:
    record = delivered(double_booking(), state(), Destination.EMAIL).record
    text, _ = render(record["template"], record["subject"], record["variables"])
    assert record["subject"] == "Double booking on Saturday 19 June 2027"
    assert "Alex & Sam on Saturday 19 June 2027, 16:00-23:00" in text and no_ids(text)


def test_double_booking_slack_names_both_couples_without_ids() -> None:
    blocks = delivered(double_booking(), state(), Destination.SLACK).record["blocks_json"]
    assert "Zoë & Łukasz on Saturday 19 June 2027, 13:00-23:00" in blocks and no_ids(blocks)


def test_booking_times_are_shown_in_the_booking_zone_when_sent_with_an_offset() -> None:
    conflict = double_booking()
    first = booking(BOOKING_A, WEDDING_A, COUPLE_A, "2027-06-19T12:00:00Z",
                    "2027-06-19T22:00:00Z", 3)  # fmt: skip
    stored, _ = apply_booking(None, first, supplier_id=PHOTO)
    assert stored[BOOKING_A].get("starts_at") == "2027-06-19T13:00"  # BST
    assert conflict["payload"]["conflicting_starts_at"] == "2027-06-19T13:00"


# ---- the double booking, as each couple reads it -----------------------------------------------
def test_couple_notice_names_the_vendor_and_their_own_booking() -> None:
    record = delivered(double_booking(), state(), Destination.INAPP, to=COUPLE_A).record
    assert record["body"].startswith(
        "Lumière Photography has a scheduling conflict for your booking on Saturday 19 June "
        "2027, 13:00-23:00."
    )


def test_couple_notice_says_nothing_of_the_other_couple_or_their_booking() -> None:
    record = delivered(double_booking(), state(), Destination.INAPP, to=COUPLE_A).record
    shown = json.dumps(record, ensure_ascii=False)
    assert "Alex" not in shown and "16:00" not in shown
    assert BOOKING_B not in shown and WEDDING_B not in shown and COUPLE_B not in shown


def test_each_couple_reads_their_own_booking_time() -> None:
    record = delivered(double_booking(), state(), Destination.INAPP, to=COUPLE_B).record
    assert "your booking on Saturday 19 June 2027, 16:00-23:00" in record["body"]
    assert "Zoë" not in json.dumps(record, ensure_ascii=False)


# ---- a booking the vendor's CRM changed -------------------------------------------------------
def noticed(*changes: DomainEvent) -> DomainEvent:
    """The detector's notice of the last change, after folding the ones before it."""
    stored = None
    for change in changes[:-1]:
        stored, _ = apply_booking(stored, change, supplier_id=PHOTO)
    before = (stored or {}).get(str(changes[-1]["payload"]["booking_id"]))
    notice = booking_notice(before, changes[-1], supplier_id=PHOTO)
    assert notice is not None
    return notice


def first_booking(version: int = 1, start: str = "13:00", **extra: PayloadValue) -> DomainEvent:
    return booking(BOOKING_A, WEDDING_A, COUPLE_A, f"2027-06-19T{start}", "2027-06-19T23:00",
                   version, **extra)  # fmt: skip


def test_new_booking_names_the_couple_and_its_date_and_times() -> None:
    record = delivered(noticed(first_booking()), state(), Destination.INAPP).record
    assert (record["title"], record["body"]) == (
        "New booking",
        "New booking for Zoë & Łukasz on Saturday 19 June 2027, 13:00-23:00",
    )


def test_booking_moved_says_from_what_to_what() -> None:
    notice = noticed(first_booking(), first_booking(2, "15:00"))
    record = delivered(notice, state(), Destination.INAPP).record
    assert (record["title"], record["body"]) == (
        "Booking changed",
        "Booking for Zoë & Łukasz moved from Saturday 19 June 2027, 13:00-23:00 "
        "to Saturday 19 June 2027, 15:00-23:00",
    )


def test_booking_cancelled_says_so_with_the_times_it_had() -> None:
    notice = noticed(first_booking(), first_booking(2, cancelled=True))
    record = delivered(notice, state(), Destination.INAPP).record
    assert (record["title"], record["body"]) == (
        "Booking cancelled",
        "Booking for Zoë & Łukasz cancelled (was Saturday 19 June 2027, 13:00-23:00)",
    )


def test_a_resent_booking_with_the_same_times_tells_nobody_again() -> None:
    stored, _ = apply_booking(None, first_booking(), supplier_id=PHOTO)
    assert booking_notice(stored[BOOKING_A], first_booking(2), supplier_id=PHOTO) is None


def test_the_raw_booking_change_is_no_longer_a_bare_booking_changed_notice() -> None:
    assert route(first_booking(), state(), load_rules(), 0) == []


# ---- dates and names in the other workflows ---------------------------------------------------
def moved() -> DomainEvent:
    return event("wedding.date_changed", {
        "wedding_id": WEDDING_A, "old_date": "2027-06-12", "new_date": "2027-06-19",
        "client_name": "Zoë & Łukasz", "venue_name": "Stodoła Kraków",
        "ceremony_time": "14:00:00", "time_zone": "Europe/Warsaw"},
        aggregate_id=WEDDING_A)  # fmt: skip


def test_date_change_sms_reads_dates_as_the_couple_would_say_them() -> None:
    assert transform.sms_text(moved()) == (
        "Zoë & Łukasz's wedding moved from Saturday 12 June 2027 to Saturday 19 June 2027, "
        "ceremony at 14:00. Please update your calendar."
    )


def test_date_change_email_subject_and_body_read_the_dates() -> None:
    template, subject, variables = transform.email_content(moved(), "Lumière Photography")
    text, _ = render(template, subject, variables)
    assert subject == "Zoë & Łukasz's wedding moved to Saturday 19 June 2027"
    assert (
        "from Saturday 12 June 2027 to Saturday 19 June 2027 (Stodoła Kraków), ceremony at 14:00"
        in text
    )


def test_date_change_slack_fields_read_the_dates() -> None:
    fields = transform.slack_blocks(moved())[1]["fields"]
    assert [f["text"] for f in fields] == [
        "*Old date:*\nSaturday 12 June 2027",
        "*New date:*\nSaturday 19 June 2027",
    ]


def profile_updated() -> DomainEvent:
    return event("client.profile_updated", {"client_id": COUPLE_A, "couple_id": COUPLE_A,
                                            "changed_fields": ["phone"]},
                 aggregate_id=COUPLE_A)  # fmt: skip


def test_profile_update_email_names_the_couple_from_the_routing_state() -> None:
    tables = state()
    tables.wedding_vendors[WEDDING_A] = {"wv": {"supplier_id": PHOTO, "vendor_type": "photo"}}
    record = delivered(profile_updated(), tables, Destination.EMAIL).record
    text, _ = render(record["template"], record["subject"], record["variables"])
    assert record["subject"] == "Zoë & Łukasz updated their profile"
    assert "Zoë & Łukasz updated their profile." in text


def test_profile_update_slack_shows_no_ids() -> None:
    tables = state()
    tables.wedding_vendors[WEDDING_A] = {"wv": {"supplier_id": PHOTO, "vendor_type": "photo"}}
    blocks = delivered(profile_updated(), tables, Destination.SLACK).record["blocks_json"]
    assert "Zoë & Łukasz updated their profile: phone" in blocks and no_ids(blocks)


def test_journey_milestone_email_names_the_client() -> None:
    ev = event("journey.milestone_completed", {"client_id": COUPLE_A,
               "client_name": "Zoë & Łukasz", "milestone": "contract signed",
               "old_percentage": "40", "new_percentage": "60"})  # fmt: skip
    template, subject, variables = transform.email_content(ev, None)
    text, _ = render(template, subject, variables)
    assert subject == "Journey milestone completed for Zoë & Łukasz: contract signed"
    assert "Journey milestone completed for Zoë & Łukasz: contract signed." in text


def test_profile_update_names_the_changed_fields_in_words() -> None:
    ev = event("client.profile_updated", {"client_name": "Zoë & Łukasz",
               "changed_fields": ["phone", "partner2_name"]})  # fmt: skip
    assert transform.sms_text(ev) == "Zoë & Łukasz updated their profile: phone, partner 2 name"


def test_slack_form_response_without_a_form_name_shows_no_form_id() -> None:
    form = str(uuid.uuid4())
    ev = event("form.response_received", {"client_name": "Zoë & Łukasz", "form_id": form})
    assert form not in json.dumps(transform.slack_blocks(ev))


def test_date_change_slack_names_the_couple_venue_and_ceremony_time() -> None:
    section = transform.slack_blocks(moved())[2]["text"]["text"]
    assert section == "Zoë & Łukasz at Stodoła Kraków, ceremony at 14:00"
