"""CDC change events -> domain events."""

from __future__ import annotations

from streams.dev.samples import change_event, demo_changes
from streams.logic.normalize import normalize_change

from tests.unit.logic.factories import CDC_REF


def _types(change: object) -> list[str]:
    return [e["event_type"] for e in normalize_change(change, CDC_REF)]  # type: ignore[arg-type]


def test_form_response_insert_is_form_response_received_keyed_by_supplier() -> None:
    change = demo_changes()[0]
    event = normalize_change(change, CDC_REF)[0]
    assert event["event_type"] == "form.response_received"
    assert event["aggregate_id"] == change["after"]["supplier_id"]  # type: ignore[index]
    assert event["payload"]["form_response_id"] == change["after"]["id"]  # type: ignore[index]


def test_aggregate_version_is_the_source_lsn() -> None:
    change = demo_changes(base_lsn=5000)[0]
    assert normalize_change(change, CDC_REF)[0]["aggregate_version"] == 5001


def test_event_ids_are_deterministic_across_replays() -> None:
    first = normalize_change(demo_changes()[0], CDC_REF)
    again = normalize_change(demo_changes()[0], CDC_REF)
    assert [e["event_id"] for e in first] == [e["event_id"] for e in again]


def test_journey_update_with_changed_percentage_is_milestone_completed() -> None:
    event = normalize_change(demo_changes()[1], CDC_REF)[0]
    assert event["event_type"] == "journey.milestone_completed"
    assert (event["payload"]["old_percentage"], event["payload"]["new_percentage"]) == (
        "40.00",
        "60.00",
    )


def test_journey_update_without_percentage_change_is_no_milestone() -> None:
    row = {"id": "jp-1", "supplier_id": "s", "completion_percentage": 40, "note": "a"}
    change = change_event("journey_progress", "u", before=row, after={**row, "note": "b"}, lsn=1)
    assert "journey.milestone_completed" not in _types(change)


def test_wedding_date_change_carries_old_and_new_date() -> None:
    change = demo_changes()[2]
    event = normalize_change(change, CDC_REF)[0]
    assert event["event_type"] == "wedding.date_changed"
    assert event["aggregate_id"] == change["after"]["id"]  # type: ignore[index]
    assert (event["payload"]["old_date"], event["payload"]["new_date"]) == (
        "2027-06-12",
        "2027-06-19",
    )


def test_wedding_update_without_date_change_is_no_date_change() -> None:
    assert "wedding.date_changed" not in _types(demo_changes()[4])


def test_wedding_date_change_builds_client_name_from_bride_and_groom() -> None:
    before = {
        "id": "w",
        "couple_id": "c-1",
        "wedding_date": "2027-01-01",
        "bride_name": "Alex",
        "groom_name": "Sam",
    }
    change = change_event(
        "wedding_details", "u", before=before, after={**before, "wedding_date": "2027-02-02"}, lsn=1
    )
    assert normalize_change(change, CDC_REF)[0]["payload"]["client_name"] == "Alex & Sam"


def test_core_fields_update_lists_changed_field_names_without_bookkeeping() -> None:
    before = {"id": "cf", "couple_id": "c-1", "phone": "1", "updated_at": "a"}
    after = {"id": "cf", "couple_id": "c-1", "phone": "2", "updated_at": "b"}
    change = change_event("core_fields", "u", before=before, after=after, lsn=1)
    event = normalize_change(change, CDC_REF)[0]
    assert event["event_type"] == "client.profile_updated"
    assert event["payload"]["changed_fields"] == ["phone"]


def test_core_fields_payload_carries_names_not_values() -> None:
    change = demo_changes()[3]
    event = normalize_change(change, CDC_REF)[0]
    assert "Samira" not in str(event["payload"])


def test_supplier_status_change_is_vendor_status_changed() -> None:
    change = change_event(
        "suppliers",
        "u",
        before={"id": "s", "status": "active"},
        after={"id": "s", "status": "paused"},
        lsn=1,
    )
    event = normalize_change(change, CDC_REF)[0]
    assert event["event_type"] == "vendor.status_changed"
    assert event["payload"]["new_status"] == "paused"


def test_webhook_table_change_is_record_changed_with_table_and_op() -> None:
    event = next(
        e
        for e in normalize_change(demo_changes()[0], CDC_REF)
        if e["event_type"] == "record.changed"
    )
    assert (event["payload"]["table"], event["payload"]["op"]) == ("form_responses", "insert")


def test_record_changed_carries_only_allow_listed_columns() -> None:
    row = {"id": "fr", "supplier_id": "s", "client_email": "a@b.c", "answers": "secret"}
    change = change_event("form_responses", "c", after=row, lsn=1)
    event = next(
        e for e in normalize_change(change, CDC_REF) if e["event_type"] == "record.changed"
    )
    assert "row.client_email" not in event["payload"]
    assert "row.answers" not in event["payload"]
    assert event["payload"]["row.id"] == "fr"


def test_delete_of_webhook_table_is_record_changed_delete() -> None:
    change = change_event("form_responses", "d", before={"id": "fr", "supplier_id": "s"}, lsn=1)
    event = normalize_change(change, CDC_REF)[0]
    assert event["payload"]["op"] == "delete"


def test_snapshot_reads_mean_nothing() -> None:
    change = change_event("form_responses", "r", after={"id": "fr", "supplier_id": "s"}, lsn=1)
    assert normalize_change(change, CDC_REF) == []


def test_unknown_table_means_nothing() -> None:
    change = change_event("audit_log", "c", after={"id": "a"}, lsn=1)
    assert normalize_change(change, CDC_REF) == []


def test_correlation_id_is_the_transaction() -> None:
    event = normalize_change(demo_changes()[0], CDC_REF)[0]
    assert event["correlation_id"] == "tx:1"


def test_core_fields_column_left_out_of_an_update_did_not_change() -> None:
    before = {"id": "cf", "couple_id": "c-1", "notes": "long", "phone": "1"}
    after = {"id": "cf", "couple_id": "c-1", "phone": "2"}  # notes: unchanged TOAST, not sent
    change = change_event("core_fields", "u", before=before, after=after, lsn=1)
    assert normalize_change(change, CDC_REF)[0]["payload"]["changed_fields"] == ["phone"]


def test_events_carry_the_source_commit_lsn() -> None:
    change = demo_changes(base_lsn=5000)[0]
    ref = {**CDC_REF, "commit_lsn": change["source"]["commit_lsn"]}
    assert normalize_change(change, ref)[0]["source"]["commit_lsn"] == 5001  # type: ignore[arg-type]
