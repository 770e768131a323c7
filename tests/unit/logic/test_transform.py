"""Per-destination payload builders and PII minimization."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from streams.errors import PoisonMessage
from streams.logic import transform
from streams.logic.routing import load_rules, route
from streams.topics import Destination

from tests.unit.logic.factories import date_changed, event, wedding_state

PII = {"couple_email": "alex@example.com", "couple_phone": "+447700900123"}


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_photography_crm_payload_has_exactly_the_domain_fields() -> None:
    payload = transform.photography_crm_payload(date_changed())
    assert payload == {
        "event_type": "wedding_date_changed",
        "wedding_id": "w-2027-0612",
        "client_name": "Alex & Sam",
        "wedding_date": "2027-06-19",
        "ceremony_time": "14:00",
        "venue_name": "Oak Barn",
        "guest_count": 120,
        "photographer_notes": "golden hour",
        "updated_at": "2026-11-22T10:00:00+00:00",
    }


def test_venue_booking_payload_has_exactly_the_domain_fields() -> None:
    payload = transform.venue_booking_payload(date_changed(booking_id="vb-9"))
    assert payload == {
        "booking_id": "vb-9",
        "event_date": "2027-06-19",
        "party_size": 120,
        "setup_time": "10:00",
        "ceremony_start": "14:00",
        "reception_start": "17:00",
        "special_requirements": "step-free",
        "coordinator_notes": "call Jo",
        "last_updated": "2026-11-22T10:00:00+00:00",
    }


# The platform stores wall-clock dates and times and no zone (DOMAIN.md): the CRM and venue
# payloads carry them as stored, as the platform's own transforms did; no zone is needed.
def test_crm_times_go_as_the_platform_stores_them_without_any_zone(host_far_east: None) -> None:
    ev = date_changed(time_zone=None, ceremony_time="14:00:00")
    assert transform.photography_crm_payload(ev)["ceremony_time"] == "14:00:00"


def test_a_timetz_ceremony_goes_with_its_stored_offset() -> None:
    payload = transform.photography_crm_payload(date_changed(ceremony_time="14:30:00+02"))
    assert payload["ceremony_time"] == "14:30:00+02"


def test_venue_times_go_as_stored_without_any_zone() -> None:
    ev = date_changed(time_zone=None, setup_time="10:00:00", ceremony_time="14:00:00",
                      reception_start=None, reception_time="18:30:00")  # fmt: skip
    payload = transform.venue_booking_payload(ev)
    assert (payload["setup_time"], payload["ceremony_start"], payload["reception_start"]) == (
        "10:00:00", "14:00:00", "18:30:00",
    )  # fmt: skip


def test_a_spring_forward_gap_time_goes_as_stored() -> None:
    ev = date_changed(new_date="2027-03-28", ceremony_time="01:30:00", time_zone=None)
    assert transform.photography_crm_payload(ev)["ceremony_time"] == "01:30:00"


def test_a_naive_updated_at_goes_as_stored_not_read_in_a_zone(host_far_east: None) -> None:
    payload = transform.venue_booking_payload(
        date_changed(time_zone=None, updated_at="2026-06-01 12:00:00")
    )
    assert payload["last_updated"] == "2026-06-01T12:00:00"


def test_an_updated_at_past_year_9999_goes_as_stored() -> None:
    payload = transform.photography_crm_payload(date_changed(updated_at="10000-01-01 00:00:00+00"))
    assert payload["updated_at"] == "10000-01-01 00:00:00+00"


def test_crm_postgres_timestamptz_updated_at_is_sent_in_utc() -> None:
    ev = date_changed(updated_at="2026-06-01 12:00:00.123456+05:30")
    payload = transform.photography_crm_payload(ev)
    assert payload["updated_at"] == "2026-06-01T06:30:00.123456+00:00"


def test_crm_payloads_never_carry_couple_contact_data() -> None:
    ev = date_changed(**PII)
    for payload in (transform.photography_crm_payload(ev), transform.venue_booking_payload(ev)):
        assert not set(PII.values()) & {str(v) for v in payload.values()}


def test_form_response_email_uses_form_response_template() -> None:
    ev = event("form.response_received", {"client_name": "Alex & Sam", "form_name": "Intake"})
    template, subject, variables = transform.email_content(ev, "Lens Ltd")
    assert template == "form_response" and "Alex & Sam" in subject
    assert variables["form_name"] == "Intake" and variables["recipient_name"] == "Lens Ltd"


def test_each_event_type_has_its_email_template() -> None:
    cases = {
        "journey.milestone_completed": "journey_progress",
        "wedding.date_changed": "wedding_date_change",
        "client.profile_updated": "client_profile_update",
        "vendor.status_changed": "generic",
    }
    for event_type, template in cases.items():
        assert transform.email_content(event(event_type, {}), None)[0] == template


def test_wedding_date_email_carries_old_and_new_date() -> None:
    variables = transform.email_content(date_changed(), None)[2]
    assert (variables["old_date"], variables["new_date"]) == (
        "Saturday 12 June 2027",
        "Saturday 19 June 2027",
    )


def test_generic_email_drops_contact_fields() -> None:
    variables = transform.email_content(event("vendor.status_changed", {**PII, "x": "1"}), None)[2]
    assert "couple_email" not in variables and variables["x"] == "1"


def test_slack_form_response_is_a_new_form_response_message() -> None:
    ev = event("form.response_received", {"client_name": "Alex & Sam", "form_name": "Intake"})
    blocks = transform.slack_blocks(ev)
    assert blocks[0]["text"]["text"] == "New form response"
    assert "Intake" in blocks[1]["text"]["text"]


def test_slack_date_change_shows_old_and_new_date_and_asks_for_calendar_update() -> None:
    text = json.dumps(transform.slack_blocks(date_changed()))
    assert "Saturday 12 June 2027" in text and "Saturday 19 June 2027" in text
    assert "Please update your calendar" in text


def test_slack_respects_block_and_section_limits() -> None:
    payload = {f"field_{i:03}": "x" * 5000 for i in range(80)}
    blocks = transform.slack_blocks(event("something.else", payload))  # type: ignore[arg-type]
    assert len(blocks) <= 50
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")


def test_slack_content_is_a_json_array_with_fallback_text() -> None:
    text, blocks_json = transform.slack_content(date_changed())
    assert isinstance(json.loads(blocks_json), list) and "Saturday 19 June 2027" in text


def test_sms_text_fits_three_segments() -> None:
    long = date_changed(old_date="x" * 600)
    assert len(transform.sms_text(long)) <= 480


def test_inapp_content_has_title_body_link() -> None:
    title, body, link, data = transform.inapp_content(date_changed())
    assert title == "Wedding date changed" and "Saturday 19 June 2027" in body
    assert link == "/weddings/w-2027-0612" and data["new_date"] == "2027-06-19"


def test_external_event_id_is_google_compatible_base32hex() -> None:
    eid = transform.external_event_id("w-1", "s-1", "si-1")
    assert re.fullmatch(r"[0-9a-v]{5,1024}", eid)


def test_external_event_id_is_stable_per_wedding_and_target() -> None:
    assert transform.external_event_id("w", "s") == transform.external_event_id("w", "s")
    assert transform.external_event_id("w", "s") != transform.external_event_id("w", "t")


def test_calendar_event_starts_at_local_ceremony_time() -> None:
    fields = transform.calendar_fields(date_changed(), None)
    assert fields is not None
    # 14:00 in London on 19 June 2027 (BST, UTC+1) is 13:00 UTC.
    utc = datetime(2027, 6, 19, 13, 0, tzinfo=UTC)
    assert fields["starts_at_ms"] == int(utc.timestamp() * 1000)
    assert fields["time_zone"] == "Europe/London" and fields["all_day"] is False


def test_calendar_event_without_ceremony_time_is_all_day_local_midnights() -> None:
    fields = transform.calendar_fields(
        date_changed(ceremony_time=None, time_zone="America/New_York"), None
    )
    assert fields is not None and fields["all_day"] is True
    assert fields["ends_at_ms"] - fields["starts_at_ms"] == 24 * 3_600_000
    assert fields["starts_at_ms"] % (24 * 3_600_000) == 4 * 3_600_000  # EDT midnight


def test_calendar_without_any_zone_carries_the_wall_clock_for_the_calendars_own_zone() -> None:
    fields = transform.calendar_fields(date_changed(time_zone=None, ceremony_time="14:00:00"), None)
    assert fields is not None
    assert (fields["local_start"], fields["local_end"]) == ("2027-06-19T14:00:00",
                                                            "2027-06-19T22:00:00")  # fmt: skip
    assert fields["starts_at_ms"] is None and fields["time_zone"] is None


def test_calendar_all_day_without_any_zone_carries_the_days() -> None:
    ev = date_changed(time_zone=None, ceremony_time=None)
    fields = transform.calendar_fields(ev, None)
    assert fields is not None and fields["all_day"] is True
    assert (fields["local_start"], fields["local_end"]) == ("2027-06-19", "2027-06-20")


def test_calendar_carries_the_integrations_zone_as_the_fallback() -> None:
    fields = transform.calendar_fields(date_changed(time_zone=None), "Australia/Sydney")
    assert fields is not None
    assert (fields["time_zone"], fields["fallback_time_zone"]) == (None, "Australia/Sydney")


def test_calendar_unknown_fallback_zone_is_refused_not_utc() -> None:
    with pytest.raises(PoisonMessage, match=r"ev-1.*fallback_time_zone.*Mars/Olympus"):
        transform.calendar_fields(date_changed(time_zone=None), "Mars/Olympus")


def test_calendar_event_zone_that_is_not_text_is_refused() -> None:
    with pytest.raises(PoisonMessage, match=r"ev-1.*time_zone"):
        transform.calendar_fields(date_changed(time_zone=["Europe/London"]), None)


def test_calendar_start_does_not_depend_on_the_host_zone(host_far_east: None) -> None:
    fields = transform.calendar_fields(date_changed(), None)
    assert fields is not None
    assert fields["starts_at_ms"] == ms(datetime(2027, 6, 19, 13, 0, tzinfo=UTC))


def test_calendar_unknown_event_zone_is_refused_not_utc() -> None:
    with pytest.raises(PoisonMessage, match=r"ev-1.*time_zone.*Mars/Olympus"):
        transform.calendar_fields(date_changed(time_zone="Mars/Olympus"), "Europe/London")


def test_calendar_ceremony_timetz_keeps_its_offset() -> None:
    fields = transform.calendar_fields(date_changed(ceremony_time="14:30:00.5-05:30"), None)
    assert fields is not None
    assert fields["starts_at_ms"] == ms(datetime(2027, 6, 19, 20, 0, 0, 500000, tzinfo=UTC))


def test_calendar_unreadable_ceremony_time_is_refused_not_all_day() -> None:
    with pytest.raises(PoisonMessage, match=r"ev-1.*ceremony_time.*teatime"):
        transform.calendar_fields(date_changed(ceremony_time="teatime"), None)


def test_calendar_spring_forward_gap_uses_the_offset_before_the_change() -> None:
    fields = transform.calendar_fields(
        date_changed(new_date="2027-03-28", ceremony_time="01:30"), None
    )
    assert fields is not None
    assert fields["starts_at_ms"] == ms(datetime(2027, 3, 28, 1, 30, tzinfo=UTC))


def test_calendar_fall_back_ambiguous_time_is_the_first_occurrence() -> None:
    fields = transform.calendar_fields(
        date_changed(new_date="2027-10-31", ceremony_time="01:30"), None
    )
    assert fields is not None
    assert fields["starts_at_ms"] == ms(datetime(2027, 10, 31, 0, 30, tzinfo=UTC))


def test_calendar_all_day_on_a_dst_day_spans_the_local_day() -> None:
    fields = transform.calendar_fields(
        date_changed(new_date="2027-03-28", ceremony_time=None), None
    )
    assert fields is not None
    assert fields["ends_at_ms"] - fields["starts_at_ms"] == 23 * 3_600_000


def test_calendar_without_date_yields_nothing() -> None:
    assert transform.calendar_fields(date_changed(new_date="soon"), None) is None


def test_webhook_body_carries_only_row_columns_and_envelope() -> None:
    ev = event(
        "record.changed",
        {
            "table": "form_responses",
            "op": "insert",
            "record_id": "fr",
            "row.id": "fr",
            "row.client_email": "a@b.c",
            **PII,
        },
    )
    body = json.loads(transform.webhook_body(ev, "form_responses.insert"))
    assert body["event"] == "form_responses.insert" and body["data"] == {"id": "fr"}
    assert "a@b.c" not in json.dumps(body) and "alex@example.com" not in json.dumps(body)


def test_slack_sms_and_inapp_deliveries_never_carry_couple_contact_data() -> None:
    state = wedding_state()
    for sid in ("s-photo", "s-venue"):
        state.suppliers[sid] = {
            **state.suppliers[sid],
            "realtime_channels": ["slack", "sms", "inapp"],
        }
    deliveries = route(date_changed(**PII), state, load_rules(), 0)
    personal = [
        d
        for d in deliveries
        if d.destination in (Destination.SLACK, Destination.SMS, Destination.INAPP)
    ]
    assert {d.destination for d in personal} == {
        Destination.SLACK,
        Destination.SMS,
        Destination.INAPP,
    }
    for delivery in personal:
        dumped = json.dumps(delivery.record)
        assert PII["couple_email"] not in dumped and PII["couple_phone"] not in dumped


def test_calendar_deliveries_never_carry_couple_contact_data() -> None:
    deliveries = route(date_changed(**PII), wedding_state(), load_rules(), 0)
    calendars = [d for d in deliveries if d.destination is Destination.CALENDAR]
    assert calendars and all(PII["couple_email"] not in json.dumps(d.record) for d in calendars)
