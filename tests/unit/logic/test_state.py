"""Event-sourced routing state reducers."""

from __future__ import annotations

import json

from streams.logic.state import StateTables, apply_change, state_updates
from streams.samples import change_event

from tests.unit.logic.factories import state_with, supplier_row


def test_supplier_insert_records_realtime_channels() -> None:
    state = state_with(("suppliers", supplier_row("s-1", channels=["email", "slack"])))
    assert state.suppliers["s-1"]["realtime_channels"] == ["email", "slack"]


def test_supplier_without_preferences_has_no_channels_chosen() -> None:
    state = state_with(("suppliers", supplier_row("s-1")))
    assert state.suppliers["s-1"]["realtime_channels"] is None


def test_malformed_preferences_json_counts_as_unset() -> None:
    state = state_with(("suppliers", supplier_row("s-1", notification_preferences="{oops")))
    assert state.suppliers["s-1"]["realtime_channels"] is None


def test_supplier_delete_removes_the_entry() -> None:
    state = state_with(("suppliers", supplier_row("s-1")))
    apply_change(state, change_event("suppliers", "d", before={"id": "s-1"}, lsn=9))
    assert "s-1" not in state.suppliers


def test_wedding_vendors_group_by_wedding_with_vendor_type() -> None:
    state = state_with(
        (
            "wedding_vendors",
            {"id": "wv", "wedding_id": "w", "supplier_id": "s", "vendor_type": "florist"},
        )
    )
    assert state.wedding_vendors["w"] == {"wv": {"supplier_id": "s", "vendor_type": "florist"}}


def test_vendor_moved_to_another_wedding_leaves_the_old_one() -> None:
    row = {"id": "wv", "wedding_id": "w1", "supplier_id": "s", "vendor_type": None}
    state = state_with(("wedding_vendors", row))
    apply_change(
        state,
        change_event("wedding_vendors", "u", before=row, after={**row, "wedding_id": "w2"}, lsn=9),
    )
    assert "w1" not in state.wedding_vendors and "wv" in state.wedding_vendors["w2"]


def test_last_vendor_delete_removes_the_wedding_key() -> None:
    row = {"id": "wv", "wedding_id": "w1", "supplier_id": "s"}
    state = state_with(("wedding_vendors", row))
    apply_change(state, change_event("wedding_vendors", "d", before=row, lsn=9))
    assert state.wedding_vendors == {}


def test_webhook_endpoint_parses_subscribed_events_and_drops_the_secret() -> None:
    state = state_with(
        (
            "webhook_endpoints",
            {
                "id": "we",
                "supplier_id": "s",
                "endpoint_url": "https://h.example",
                "secret_key": "k",
                "subscribed_events": json.dumps(["form_responses.insert"]),
                "is_active": True,
            },
        )
    )
    endpoint = state.webhook_endpoints["s"]["we"]
    assert endpoint["subscribed_events"] == ["form_responses.insert"]
    assert "k" not in json.dumps(endpoint).replace('"', " ").split()


def test_integrations_of_three_tables_share_one_state_keyed_by_supplier() -> None:
    state = state_with(
        ("supplier_integrations", {"id": "1", "supplier_id": "s", "integration_type": "tave"}),
        ("venue_integrations", {"id": "1", "supplier_id": "s"}),
        ("email_integrations", {"id": "1", "supplier_id": "s", "credentials": '{"k": 1}'}),
    )
    assert sorted(state.integrations["s"]) == [
        "email_integrations:1",
        "supplier_integrations:1",
        "venue_integrations:1",
    ]
    assert "credentials" not in json.dumps(state.integrations)


def test_integration_is_active_text_flag_is_read() -> None:
    state = state_with(
        ("supplier_integrations", {"id": "1", "supplier_id": "s", "is_active": "false"})
    )
    assert state.integrations["s"]["supplier_integrations:1"]["is_active"] is False


def test_non_state_table_changes_nothing() -> None:
    assert state_updates(change_event("form_responses", "c", after={"id": "x"}, lsn=1)) == []


def test_updates_assign_new_values_instead_of_mutating() -> None:
    state = state_with(("wedding_vendors", {"id": "a", "wedding_id": "w", "supplier_id": "s"}))
    before = state.wedding_vendors["w"]
    apply_change(
        state,
        change_event(
            "wedding_vendors", "c", after={"id": "b", "wedding_id": "w", "supplier_id": "t"}, lsn=2
        ),
    )
    assert list(before) == ["a"] and sorted(state.wedding_vendors["w"]) == ["a", "b"]


def test_snapshot_reads_build_state() -> None:
    tables = StateTables.empty()
    apply_change(tables, change_event("suppliers", "r", after=supplier_row("s-1"), lsn=1))
    assert "s-1" in tables.suppliers
