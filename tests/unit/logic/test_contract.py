"""The source contract: checks of a live table's columns, and the operator's name mapping."""

from __future__ import annotations

from pathlib import Path

import pytest
from streams.errors import ConfigurationError
from streams.logic.contract import Contract, ContractMapping, TableMapping, load_mapping

VENDORS = {"id": "uuid", "wedding_id": "uuid", "vendor_id": "uuid", "vendor_type": "text"}


def test_the_platform_table_satisfies_the_contract() -> None:
    assert Contract.default().check("wedding_vendors", VENDORS) == []


def test_a_missing_column_is_named_with_what_to_do() -> None:
    live = {k: v for k, v in VENDORS.items() if k != "vendor_id"}
    (problem,) = Contract.default().check("wedding_vendors", live)
    assert str(problem).startswith("wedding_vendors.vendor_id: missing")
    assert "WEDSYNC_CDC_CONTRACT_FILE" in str(problem)


def test_a_column_of_another_type_is_named() -> None:
    live = {**VENDORS, "vendor_id": "jsonb"}
    (problem,) = Contract.default().check("wedding_vendors", live)
    assert str(problem).startswith("wedding_vendors.vendor_id: is jsonb")


def test_text_array_subscriptions_must_be_an_array() -> None:
    live = {"id": "uuid", "supplier_id": "uuid", "endpoint_url": "text", "secret_key": "text",
            "subscribed_events": "jsonb", "is_active": "boolean"}  # fmt: skip
    problems = Contract.default().check("webhook_endpoints", live)
    assert [p.column for p in problems] == ["subscribed_events"]


def test_tables_outside_the_contract_are_not_checked() -> None:
    assert Contract.default().check("audit_log", {"id": "bigint"}) == []


def test_mapping_renames_a_column_for_the_check() -> None:
    mapping = ContractMapping(tables={"wedding_vendors": TableMapping(
        table="wedding_suppliers", columns={"vendor_id": "supplier_id"})})  # fmt: skip
    contract = Contract.default().mapped(mapping)
    live = {**{k: v for k, v in VENDORS.items() if k != "vendor_id"}, "supplier_id": "uuid"}
    assert contract.check("wedding_suppliers", live) == []


def test_carried_columns_use_contract_names_and_drop_secrets() -> None:
    mapping = ContractMapping(tables={"webhook_endpoints": TableMapping(
        columns={"endpoint_url": "url"})})  # fmt: skip
    table = Contract.default().mapped(mapping).tables["webhook_endpoints"]
    carried = table.carried(["id", "supplier_id", "url", "secret_key", "internal_note"])
    assert carried == {"id": "id", "supplier_id": "supplier_id", "url": "endpoint_url"}


def test_mapping_an_unknown_column_is_refused() -> None:
    mapping = ContractMapping(tables={"wedding_vendors": TableMapping(columns={"vendor": "x"})})
    with pytest.raises(ConfigurationError, match=r"wedding_vendors\.vendor is not a contract"):
        Contract.default().mapped(mapping)


def test_mapping_an_unknown_table_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown table 'weddings'"):
        Contract.default().mapped(ContractMapping(tables={"weddings": TableMapping()}))


def test_mapping_file_with_an_unknown_key_names_it(tmp_path: Path) -> None:
    path = tmp_path / "contract.toml"
    path.write_text('[tables.wedding_vendors]\ncolumn = { vendor_id = "supplier_id" }\n')
    with pytest.raises(ConfigurationError, match=r"tables\.wedding_vendors\.column"):
        load_mapping(path)
