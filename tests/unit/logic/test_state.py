"""Routing state: row folding (one row per key, absent = unchanged) and the indexes built
from rows, on the platform's column names and types."""

from __future__ import annotations

import json

from streams.dev.samples import change_event
from streams.logic.state import RoutingState, fold_row, normalize_channel

from tests.unit.logic.factories import routing_state_with, state_with, supplier_row

UUID_W1 = "6b1f9c1e-2f43-4c1d-9a55-0c8a2b9f1a01"
UUID_W2 = "6b1f9c1e-2f43-4c1d-9a55-0c8a2b9f1a02"


def test_supplier_insert_records_realtime_channels() -> None:
    state = state_with(("suppliers", supplier_row("s-1", channels=["email", "slack"])))
    assert state.suppliers["s-1"]["realtime_channels"] == ["email", "slack"]


def test_platform_channel_spelling_in_app_is_normalized() -> None:
    state = state_with(("suppliers", supplier_row("s-1", channels=["in-app", "In_App", "email"])))
    assert state.suppliers["s-1"]["realtime_channels"] == ["inapp", "email"]


def test_channel_names_normalize_once() -> None:
    assert [normalize_channel(c) for c in ("in-app", "in_app", "inapp", " SMS ")] == [
        "inapp",
        "inapp",
        "inapp",
        "sms",
    ]


def test_supplier_in_app_user_is_the_supplier() -> None:
    state = state_with(("suppliers", supplier_row("s-1")))
    assert state.suppliers["s-1"]["user_id"] == "s-1"


def test_supplier_without_preferences_has_no_channels_chosen() -> None:
    state = state_with(("suppliers", supplier_row("s-1")))
    assert state.suppliers["s-1"]["realtime_channels"] is None


def test_malformed_preferences_json_counts_as_unset() -> None:
    state = state_with(("suppliers", supplier_row("s-1", notification_preferences="{oops")))
    assert state.suppliers["s-1"]["realtime_channels"] is None


def test_supplier_delete_removes_the_entry() -> None:
    state = routing_state_with(("suppliers", supplier_row("s-1")))
    state.apply_change(change_event("suppliers", "d", before={"id": "s-1"}, lsn=9))
    assert "s-1" not in state.tables.suppliers


def test_update_without_a_toasted_column_keeps_its_previous_value() -> None:
    opted_out = supplier_row("s-1", channels=["slack"])
    state = routing_state_with(("suppliers", opted_out))
    # PostgreSQL left the unchanged (TOASTed) notification_preferences out of the update
    after = {"id": "s-1", "business_name": "Renamed Ltd", "email": "s-1@x.io"}
    state.apply_change(change_event("suppliers", "u", before=None, after=after, lsn=9))
    assert state.tables.suppliers["s-1"]["realtime_channels"] == ["slack"]


def test_fold_row_merges_absent_columns_and_deletes_on_delete() -> None:
    change = change_event("webhook_endpoints", "u", after={"id": "e", "is_active": False}, lsn=2)
    assert fold_row({"id": "e", "endpoint_url": "https://x", "is_active": True}, change) == {
        "id": "e",
        "endpoint_url": "https://x",
        "is_active": False,
    }
    gone = change_event("webhook_endpoints", "d", before={"id": "e"}, lsn=3)
    assert fold_row({"id": "e"}, gone) is None


def test_wedding_vendors_group_by_wedding_with_vendor_type() -> None:
    state = state_with(
        (
            "wedding_vendors",
            {"id": "wv", "wedding_id": UUID_W1, "vendor_id": "s", "vendor_type": "florist"},
        )
    )
    assert state.wedding_vendors[UUID_W1] == {"wv": {"supplier_id": "s", "vendor_type": "florist"}}


def test_vendor_moved_to_another_wedding_leaves_the_old_one() -> None:
    row = {"id": "wv", "wedding_id": UUID_W1, "vendor_id": "s", "vendor_type": None}
    state = routing_state_with(("wedding_vendors", row))
    state.apply_change(
        change_event(
            "wedding_vendors", "u", before=row, after={**row, "wedding_id": UUID_W2}, lsn=9
        )
    )
    assert UUID_W1 not in state.tables.wedding_vendors
    assert "wv" in state.tables.wedding_vendors[UUID_W2]


def test_vendor_move_without_old_values_still_leaves_the_old_wedding() -> None:
    # default replica identity: no before image; the row's previous value is in the state
    row = {"id": "wv", "wedding_id": UUID_W1, "vendor_id": "s", "vendor_type": None}
    state = routing_state_with(("wedding_vendors", row))
    state.apply_change(
        change_event("wedding_vendors", "u", after={**row, "wedding_id": UUID_W2}, lsn=9)
    )
    assert UUID_W1 not in state.tables.wedding_vendors


def test_last_vendor_delete_removes_the_wedding_key() -> None:
    row = {"id": "wv", "wedding_id": UUID_W1, "vendor_id": "s"}
    state = routing_state_with(("wedding_vendors", row))
    state.apply_change(change_event("wedding_vendors", "d", before={"id": "wv"}, lsn=9))
    assert state.tables.wedding_vendors == {}


def test_text_array_subscriptions_are_read_as_a_list() -> None:
    row = {
        "id": "e1",
        "supplier_id": "s",
        "endpoint_url": "https://hooks.example/in",
        "subscribed_events": ["form_responses.insert", "wedding_details.update"],
        "is_active": True,
    }
    state = state_with(("webhook_endpoints", row))
    assert state.webhook_endpoints["s"]["e1"]["subscribed_events"] == [
        "form_responses.insert",
        "wedding_details.update",
    ]


def test_endpoint_without_is_active_is_not_active() -> None:
    row = {"id": "e1", "supplier_id": "s", "endpoint_url": "https://h.example/x"}
    state = state_with(("webhook_endpoints", row))
    assert state.webhook_endpoints["s"]["e1"]["is_active"] is False


def test_venue_integration_belongs_to_its_venue_supplier() -> None:
    row = {
        "id": "vi",
        "venue_id": "s-venue",
        "webhook_url": "https://venue.example/bookings",
        "notification_preferences": "{}",
        "is_active": True,
    }
    state = state_with(("venue_integrations", row))
    integration = state.integrations["s-venue"]["venue_integrations:vi"]
    assert (integration["integration_type"], integration["endpoint_url"]) == (
        "venue_booking",
        "https://venue.example/bookings",
    )


def test_supplier_integration_reads_webhook_url_and_settings() -> None:
    row = {
        "id": "si",
        "supplier_id": "s",
        "integration_type": "google_calendar",
        "webhook_url": None,
        "settings": json.dumps({"calendar_id": "cal@x", "time_zone": "Europe/London"}),
        "is_active": True,
    }
    integration = state_with(("supplier_integrations", row)).integrations["s"][
        "supplier_integrations:si"
    ]
    assert (integration["calendar_id"], integration["time_zone"]) == ("cal@x", "Europe/London")


def test_weddings_are_indexed_by_couple() -> None:
    state = state_with(("wedding_details", {"id": UUID_W1, "couple_id": "c-1"}))
    assert state.couple_weddings == {"c-1": {UUID_W1: UUID_W1}}


def test_a_wedding_is_known_by_its_couple_names_and_stored_date() -> None:
    row = {"id": UUID_W1, "couple_id": "c-1", "bride_name": "Zoë", "groom_name": "Łukasz",
           "wedding_date": "2027-06-19", "ceremony_time": "14:00:00"}  # fmt: skip
    wedding = state_with(("wedding_details", row)).weddings[UUID_W1]
    assert wedding["couple_name"] == "Zoë & Łukasz"
    assert (wedding["wedding_date"], wedding["ceremony_time"]) == ("2027-06-19", "14:00:00")


def test_tables_that_are_not_state_change_nothing() -> None:
    state = RoutingState()
    state.apply_change(change_event("form_responses", "c", after={"id": "x"}, lsn=1))
    assert state.rows == {}


def test_heartbeat_moves_the_watermark() -> None:
    state = RoutingState()
    beat = change_event("suppliers", "h", after=None, lsn=77)
    state.apply_change(beat)
    assert state.watermark == 77
