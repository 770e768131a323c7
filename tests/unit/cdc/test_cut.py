"""What the CDC source cuts from a change too large for one record (pure: cut.py)."""

from __future__ import annotations

import json
from typing import Any

from connectors.sources.postgres_cdc.cut import (
    Fitted,
    TooLarge,
    cut_value,
    cuttable_columns,
    fit_change,
    never_cut,
    value_bytes,
)
from streams.logic.contract import Contract
from streams.logic.normalize import changed_columns
from streams.models import ChangeEvent

TEXT, JSONB, TEXT_ARRAY, UUID, INT = 25, 3802, 1009, 2950, 23


def event(before: dict[str, Any] | None, after: dict[str, Any] | None) -> ChangeEvent:
    return ChangeEvent(
        event_id="postgres:1:wedding_details:w1", op="u", before=before, after=after,
        primary_key=["id"], ts_ms=0, source_ts_ms=0,
        source={"connector": "postgres", "db": "postgres", "schema": "public",
                "table": "wedding_details", "lsn": 1, "commit_lsn": 1, "state_lsn": None,
                "tx_id": 1, "ts_ms": 0, "snapshot": False},
    )  # fmt: skip


def size(change: ChangeEvent, cut: tuple[str, ...]) -> int:
    """The images' weight plus the header naming the cut columns."""
    images = [i for i in (change["before"], change["after"]) if i is not None]
    return sum(value_bytes(v) for i in images for v in i.values()) + len(",".join(cut))


def fit(change: ChangeEvent, limit: int, bound: int = 100, **cuttable: Any) -> Any:
    kinds = cuttable or {"special_requests": "text", "venue_notes": "text"}
    return fit_change(change, record_size=size, limit=limit, bound=bound, cuttable=kinds)


def test_a_change_that_fits_is_not_cut() -> None:
    change = event(None, {"id": "w1", "special_requests": "x" * 500})
    assert fit(change, limit=1000) == Fitted(change)


def test_text_is_cut_to_the_bound_without_splitting_a_character() -> None:
    cut = cut_value("é" * 100, "text", 51)  # two bytes each
    assert cut == "é" * 25


def test_a_json_object_drops_its_largest_members_until_it_fits() -> None:
    doc = {"realtime_channels": ["slack"], "slack_channel": "C1", "note": "n" * 5000,
           "history": ["h" * 100] * 10}  # fmt: skip
    cut = cut_value(json.dumps(doc), "json", 200)
    assert isinstance(cut, str)
    assert json.loads(cut) == {"realtime_channels": ["slack"], "slack_channel": "C1"}


def test_a_json_array_keeps_its_leading_elements() -> None:
    cut = cut_value(json.dumps(["a" * 40, "b" * 40, "c" * 40]), "json", 100)
    assert isinstance(cut, str)
    assert json.loads(cut) == ["a" * 40, "b" * 40]


def test_a_text_array_keeps_the_leading_elements_that_fit() -> None:
    assert cut_value(["vegan", "nut allergy", "x" * 500], "text[]", 100) == [
        "vegan", "nut allergy",
    ]  # fmt: skip


def test_only_the_largest_columns_needed_are_cut() -> None:
    change = event(None, {"id": "w1", "special_requests": "s" * 900, "venue_notes": "v" * 300})
    result = fit(change, limit=600)
    assert isinstance(result, Fitted) and result.cut == ("special_requests",)
    assert result.event["after"] == {"id": "w1", "special_requests": "s" * 100,
                                     "venue_notes": "v" * 300}  # fmt: skip
    assert change["after"] is not None and change["after"]["special_requests"] == "s" * 900


def test_a_column_cut_to_the_same_prefix_in_both_images_still_reads_as_changed() -> None:
    old, new = "s" * 900, "s" * 899 + "!"
    result = fit(event({"id": "w1", "special_requests": old},
                       {"id": "w1", "special_requests": new}), limit=600)  # fmt: skip
    assert isinstance(result, Fitted)
    assert changed_columns(result.event) == ["special_requests"]


def test_a_column_equal_in_both_images_still_reads_as_unchanged() -> None:
    same = "s" * 900
    result = fit(event({"id": "w1", "special_requests": same, "guest_count": 80},
                       {"id": "w1", "special_requests": same, "guest_count": 90}),
                 limit=600)  # fmt: skip
    assert isinstance(result, Fitted)
    assert changed_columns(result.event) == ["guest_count"]


def test_keys_identifiers_and_addresses_are_never_cut() -> None:
    types = {"id": TEXT, "supplier_id": TEXT, "endpoint_url": TEXT, "subscribed_events":
             TEXT_ARRAY, "note": TEXT, "count": INT, "ref": UUID}  # fmt: skip
    keep = never_cut("webhook_endpoints", ["id"], Contract.default())
    assert cuttable_columns(types, keep) == {"note": "text"}


def test_free_text_and_json_of_the_platform_are_cuttable() -> None:
    types = {"id": UUID, "special_requests": TEXT, "dietary_requirements": TEXT_ARRAY,
             "notification_preferences": JSONB}  # fmt: skip
    keep = never_cut("wedding_details", ["id"], Contract.default())
    assert cuttable_columns(types, keep) == {
        "special_requests": "text", "dietary_requirements": "text[]",
        "notification_preferences": "json",
    }  # fmt: skip


def test_a_change_that_cannot_fit_even_cut_says_what_it_weighed() -> None:
    change = event(None, {"id": "w1", "endpoint_url": "u" * 5000, "special_requests": "s" * 900})
    result = fit(change, limit=1000, special_requests="text")
    assert isinstance(result, TooLarge)
    assert result.cut == ("special_requests",)
    reason = result.reason(1000, 100)
    assert "endpoint_url 5000 bytes" in reason and "max_record_bytes 1000" in reason
