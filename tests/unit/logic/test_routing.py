"""Routing rules x channel preferences x state -> deliveries."""

from __future__ import annotations

import json

from streams.logic.routing import Delivery, load_rules, route
from streams.logic.state import StateTables
from streams.topics import Destination

from tests.unit.logic.factories import (
    WEDDING,
    date_changed,
    event,
    state_with,
    supplier_row,
    wedding_state,
)

RULES = load_rules()
NOW = 1_800_000_000_100


def kinds(deliveries: list[Delivery]) -> list[tuple[str, str | None]]:
    return sorted((d.destination.value, d.record["recipient_id"]) for d in deliveries)


def form_response(supplier: str = "s-photo") -> object:
    return event(
        "form.response_received",
        {
            "supplier_id": supplier,
            "client_id": "c-1",
            "form_id": "f-7",
            "client_name": "Alex & Sam",
        },
    )


def test_form_response_default_reaches_supplier_email_inapp_and_photography_crm() -> None:
    deliveries = route(form_response(), wedding_state(), RULES, NOW)  # type: ignore[arg-type]
    assert kinds(deliveries) == [("crm", "s-photo"), ("email", "s-photo"), ("inapp", "s-photo")]


def test_journey_milestone_default_reaches_email_slack_and_email_marketing() -> None:
    state = state_with(
        ("suppliers", supplier_row("s-1")),
        (
            "email_integrations",
            {
                "id": "ei",
                "supplier_id": "s-1",
                "platform_type": "mailchimp",
                "webhook_url": "https://mc.example",
                "is_active": True,
            },
        ),
    )
    ev = event("journey.milestone_completed", {"supplier_id": "s-1", "milestone": "contract"})
    assert kinds(route(ev, state, RULES, NOW)) == [
        ("crm", "s-1"),
        ("email", "s-1"),
        ("slack", "s-1"),
    ]


def test_wedding_date_change_fans_out_to_every_vendor_channel_calendar_crm_and_venue() -> None:
    deliveries = route(date_changed(), wedding_state(), RULES, NOW)
    assert kinds(deliveries) == sorted(
        [
            ("email", "s-photo"),
            ("slack", "s-photo"),
            ("inapp", "s-photo"),
            ("crm", "s-photo"),
            ("calendar", "s-photo"),
            ("email", "s-venue"),
            ("slack", "s-venue"),
            ("inapp", "s-venue"),
            ("calendar", "s-venue"),
            ("crm", "s-venue"),
        ]
    )


def test_wedding_date_change_reaches_venue_booking_system() -> None:
    crm = [
        d.record
        for d in route(date_changed(), wedding_state(), RULES, NOW)
        if d.destination is Destination.CRM
    ]
    assert sorted(r["crm_kind"] for r in crm) == ["photography_crm", "venue_booking"]  # type: ignore[typeddict-item]


def test_client_profile_update_reaches_the_couples_suppliers() -> None:
    ev = event(
        "client.profile_updated",
        {"client_id": "c-1", "wedding_id": WEDDING, "changed_fields": ["phone"]},
    )
    recipients = {d.record["recipient_id"] for d in route(ev, wedding_state(), RULES, NOW)}
    assert recipients == {"s-photo", "s-venue"}


def test_supplier_preferences_replace_the_defaults() -> None:
    state = state_with(("suppliers", supplier_row("s-1", channels=["slack"])))
    ev = event("form.response_received", {"supplier_id": "s-1"})
    assert kinds(route(ev, state, RULES, NOW)) == [("slack", "s-1")]


def test_preferences_outside_allowed_channels_are_ignored() -> None:
    state = state_with(("suppliers", supplier_row("s-1", channels=["sms", "inapp"])))
    ev = event("form.response_received", {"supplier_id": "s-1"})
    assert kinds(route(ev, state, RULES, NOW)) == [("inapp", "s-1")]


def test_empty_preferences_mean_no_personal_channels() -> None:
    state = state_with(("suppliers", supplier_row("s-1", channels=[])))
    ev = event("form.response_received", {"supplier_id": "s-1"})
    assert route(ev, state, RULES, NOW) == []


def test_sms_preference_is_honoured_for_urgent_date_change() -> None:
    state = wedding_state()
    state.suppliers["s-venue"] = {**state.suppliers["s-venue"], "realtime_channels": ["sms"]}
    sms = [
        d.record
        for d in route(date_changed(), state, RULES, NOW)
        if d.destination is Destination.SMS
    ]
    assert len(sms) == 1 and sms[0]["urgent"] is True  # type: ignore[typeddict-item]


def test_channel_without_address_is_skipped() -> None:
    state = state_with(("suppliers", supplier_row("s-1", email=None)))
    ev = event("form.response_received", {"supplier_id": "s-1"})
    assert kinds(route(ev, state, RULES, NOW)) == [("inapp", "s-1")]


def test_unknown_supplier_gets_nothing_addressed_to_a_made_up_user() -> None:
    ev = event("form.response_received", {"supplier_id": "s-new"})
    assert route(ev, StateTables.empty(), RULES, NOW) == []


def test_unknown_supplier_is_reported_as_a_problem() -> None:
    problems: list[str] = []
    route(event("form.response_received", {"supplier_id": "s-new"}), StateTables.empty(), RULES,
          NOW, problems)  # fmt: skip
    assert problems == ["supplier s-new is not in the routing state"]


def test_a_couples_profile_update_reaches_the_vendors_of_its_weddings() -> None:
    state = state_with(
        ("suppliers", supplier_row("s-1")),
        ("wedding_details", {"id": "w-1", "couple_id": "c-1"}),
        ("wedding_vendors", {"id": "wv", "wedding_id": "w-1", "vendor_id": "s-1"}),
    )
    ev = event("client.profile_updated", {"couple_id": "c-1", "changed_fields": ["phone"]})
    assert kinds(route(ev, state, RULES, NOW)) == [("email", "s-1"), ("inapp", "s-1")]


def test_inactive_integration_is_not_called() -> None:
    state = state_with(
        (
            "supplier_integrations",
            {
                "id": "si",
                "supplier_id": "s-1",
                "integration_type": "photography_crm",
                "webhook_url": "https://crm.example",
                "is_active": False,
            },
        )
    )
    ev = event("form.response_received", {"supplier_id": "s-1"})
    assert Destination.CRM not in {d.destination for d in route(ev, state, RULES, NOW)}


def test_unrouted_event_type_yields_nothing() -> None:
    assert route(event("calendar.event_changed", {}), wedding_state(), RULES, NOW) == []


def test_booking_conflict_reaches_vendor_and_couple() -> None:
    ev = event(
        "booking.conflict_detected", {"supplier_id": "s-photo", "client_ids": ["c-1", "c-2"]}
    )
    got = kinds(route(ev, wedding_state(), RULES, NOW))
    assert ("inapp", "c-1") in got and ("inapp", "c-2") in got
    assert ("email", "s-photo") in got and ("sms", "s-photo") in got


def test_delivery_ids_are_deterministic_and_unique_per_target() -> None:
    first = [d.record["delivery_id"] for d in route(date_changed(), wedding_state(), RULES, NOW)]
    again = [d.record["delivery_id"] for d in route(date_changed(), wedding_state(), RULES, 5)]
    assert first == again and len(set(first)) == len(first)


def test_delivery_key_is_the_aggregate_id() -> None:
    out = route(date_changed(), wedding_state(), RULES, NOW)
    assert {d.key for d in out if d.destination is not Destination.INAPP} == {WEDDING}


def test_inapp_delivery_key_is_the_user_so_a_users_stream_stays_on_one_partition() -> None:
    inapp = [d for d in route(date_changed(), wedding_state(), RULES, NOW)
             if d.destination is Destination.INAPP]  # fmt: skip
    assert inapp and all(d.key == d.record["user_id"] for d in inapp)


def test_delivery_envelope_carries_version_and_routing_time() -> None:
    record = route(date_changed(), wedding_state(), RULES, NOW)[0].record
    assert (record["aggregate_version"], record["routed_at_ms"], record["attempt"]) == (42, NOW, 0)


def _webhook_state(events: list[str], active: bool = True) -> StateTables:
    return state_with(
        (
            "webhook_endpoints",
            {
                "id": "we-1",
                "supplier_id": "s-1",
                "endpoint_url": "https://hooks.example/in",
                "secret_key": "whsec_x",
                "subscribed_events": json.dumps(events),
                "is_active": active,
            },
        )
    )


def _record_changed(op: str = "insert") -> object:
    return event(
        "record.changed",
        {
            "table": "form_responses",
            "op": op,
            "supplier_id": "s-1",
            "record_id": "fr-1",
            "row.id": "fr-1",
        },
    )


def test_subscribed_webhook_gets_table_op_event() -> None:
    deliveries = route(
        _record_changed(),
        _webhook_state(["form_responses.insert"]),  # type: ignore[arg-type]
        RULES,
        NOW,
    )
    assert [d.record["event_name"] for d in deliveries] == ["form_responses.insert"]  # type: ignore[typeddict-item]


def test_webhook_delivery_names_its_endpoint_as_the_integration() -> None:
    """SLA health and the results' partitioning are per endpoint, like other integrations."""
    (d,) = route(_record_changed(), _webhook_state(["form_responses.insert"]), RULES, NOW)  # type: ignore[arg-type]
    assert d.record["integration_id"] == d.record["endpoint_id"]  # type: ignore[typeddict-item]


def test_webhook_not_subscribed_to_the_op_gets_nothing() -> None:
    state = _webhook_state(["form_responses.insert"])
    assert route(_record_changed("delete"), state, RULES, NOW) == []  # type: ignore[arg-type]


def test_inactive_webhook_gets_nothing() -> None:
    state = _webhook_state(["form_responses.insert"], active=False)
    assert route(_record_changed(), state, RULES, NOW) == []  # type: ignore[arg-type]


def test_webhook_of_another_supplier_gets_nothing() -> None:
    state = _webhook_state(["form_responses.insert"])
    ev = event(
        "record.changed", {"table": "form_responses", "op": "insert", "supplier_id": "s-other"}
    )
    assert route(ev, state, RULES, NOW) == []


def test_webhook_delivery_never_carries_the_secret() -> None:
    deliveries = route(
        _record_changed(),
        _webhook_state(["form_responses.insert"]),  # type: ignore[arg-type]
        RULES,
        NOW,
    )
    assert "whsec_x" not in json.dumps(deliveries[0].record)


def test_an_unknown_wedding_zone_leaves_out_calendar_and_crm_but_not_the_rest() -> None:
    problems: list[str] = []
    out = route(date_changed(time_zone="Mars/Olympus"), wedding_state(), RULES, NOW, problems)
    destinations = {d.destination for d in out}
    assert Destination.CALENDAR not in destinations and Destination.EMAIL in destinations
    assert problems and all("Mars/Olympus" in p for p in problems)


def test_a_wedding_without_a_zone_reaches_the_crm() -> None:
    state = state_with(
        ("suppliers", supplier_row("s-photo")),
        ("wedding_vendors", {"id": "wv", "wedding_id": WEDDING, "vendor_id": "s-photo"}),
        ("supplier_integrations", {
            "id": "si", "supplier_id": "s-photo", "integration_type": "photography_crm",
            "webhook_url": "https://crm.example/hook", "is_active": True,
            "settings": json.dumps({"time_zone": "America/New_York"}),
        }),
    )  # fmt: skip
    problems: list[str] = []
    out = route(date_changed(time_zone=None), state, RULES, NOW, problems)
    (crm,) = [d.record for d in out if d.destination is Destination.CRM]
    assert problems == []
    assert crm["payload"]["ceremony_time"] == "14:00"  # as stored: a CRM needs no zone


def test_a_form_response_files_the_crm_update_under_the_couples_only_wedding() -> None:
    state = state_with(
        ("suppliers", supplier_row("s-photo")),
        ("wedding_details", {"id": WEDDING, "couple_id": "c-1", "wedding_date": "2027-06-12"}),
        ("supplier_integrations", {"id": "si-crm", "supplier_id": "s-photo",
                                   "integration_type": "photography_crm",
                                   "webhook_url": "https://crm.example/hook", "is_active": True}),
    )  # fmt: skip
    ev = event("form.response_received", {"supplier_id": "s-photo", "client_id": "c-1"})
    crm = [d.record for d in route(ev, state, RULES, NOW) if d.destination is Destination.CRM]
    assert [r["payload"]["wedding_id"] for r in crm] == [WEDDING]  # type: ignore[typeddict-item]


def test_a_couple_with_two_weddings_gets_no_guessed_wedding_id() -> None:
    state = state_with(
        ("suppliers", supplier_row("s-photo")),
        ("wedding_details", {"id": WEDDING, "couple_id": "c-1", "wedding_date": "2027-06-12"}),
        ("wedding_details", {"id": "w-2", "couple_id": "c-1", "wedding_date": "2028-06-12"}),
        ("supplier_integrations", {"id": "si-crm", "supplier_id": "s-photo",
                                   "integration_type": "photography_crm",
                                   "webhook_url": "https://crm.example/hook", "is_active": True}),
    )  # fmt: skip
    ev = event("form.response_received", {"supplier_id": "s-photo", "couple_id": "c-1"})
    crm = [d.record for d in route(ev, state, RULES, NOW) if d.destination is Destination.CRM]
    assert [r["payload"]["wedding_id"] for r in crm] == [None]  # type: ignore[typeddict-item]


TOKEN = "Zx81qT5vW0kLm3NoP9rS2tU7"


def test_a_webhook_url_carrying_a_token_is_routed_without_it() -> None:
    state = state_with(("webhook_endpoints", {
        "id": "we-1", "supplier_id": "s-1", "secret_key": "whsec_x", "is_active": True,
        "endpoint_url": f"https://user:{TOKEN}@hooks.example/in?token={TOKEN}",
        "subscribed_events": json.dumps(["form_responses.insert"]),
    }))  # fmt: skip
    (delivery,) = route(_record_changed(), state, RULES, NOW)
    assert TOKEN not in json.dumps(delivery.record)
    assert delivery.record["endpoint_url"].startswith("https://hooks.example/in")


def test_a_crm_url_carrying_a_token_is_routed_without_it() -> None:
    state = state_with(
        ("suppliers", supplier_row("s-photo")),
        ("wedding_vendors", {"id": "wv", "wedding_id": WEDDING, "vendor_id": "s-photo"}),
        ("supplier_integrations", {
            "id": "si", "supplier_id": "s-photo", "integration_type": "photography_crm",
            "webhook_url": f"https://crm.example/hook/{TOKEN}", "is_active": True,
        }),
    )  # fmt: skip
    (crm,) = [d for d in route(date_changed(), state, RULES, NOW) if d.destination.value == "crm"]
    assert TOKEN not in json.dumps(crm.record)
    assert crm.record["endpoint_url"] == "https://crm.example/hook/redacted"
