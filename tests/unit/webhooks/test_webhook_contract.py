"""The HTTP change path applies the source contract as the PostgreSQL CDC source does: the
contract's tables only, its names, its keys, its carried columns and never a secret."""

from __future__ import annotations

import re
from typing import Any

import pytest
from connectors.sources.webhooks.config import parse_gateway_config
from connectors.sources.webhooks.convert import (
    ConversionError,
    UnknownTable,
    from_debezium,
    from_supabase,
)
from connectors.sources.webhooks.typed import pg_type
from streams.errors import ConfigurationError
from streams.logic.contract import Contract, ContractMapping, TableMapping
from streams.settings import REPO_ROOT
from streams.topics import change_key

CONTRACT = Contract.default()
ENDPOINT = {"id": "e-1", "supplier_id": "s-1", "endpoint_url": "https://x.example/h",
            "secret_key": "whsec-never", "subscribed_events": ["form_responses.insert"],
            "is_active": True, "created_at": "2026-01-01T00:00:00+00:00"}  # fmt: skip
INTEGRATION = {"id": "i-1", "supplier_id": "s-1", "integration_type": "tave",
               "webhook_url": "https://crm.example", "api_key": "key-never",
               "settings": {}, "is_active": True}  # fmt: skip


def supabase(document: Any, contract: Contract = CONTRACT) -> Any:
    return from_supabase(document, contract=contract, database="wedsync", received_ms=0,
                         request_id="r").change  # fmt: skip


def debezium(table: str, op: str, before: Any, after: Any) -> Any:
    doc = {"op": op, "before": before, "after": after, "ts_ms": 1,
           "source": {"db": "platform", "schema": "public", "table": table, "lsn": 10,
                      "txId": 2, "ts_ms": 1}}  # fmt: skip
    return from_debezium(doc, contract=CONTRACT, database="wedsync", received_ms=0,
                         request_id="r").change  # fmt: skip


def hook(kind: str, table: str, record: Any, old: Any = None) -> dict[str, Any]:
    return {"type": kind, "table": table, "schema": "public", "record": record, "old_record": old}


@pytest.mark.parametrize(
    ("document", "image"),
    [
        (hook("INSERT", "webhook_endpoints", ENDPOINT), "after"),
        (hook("DELETE", "webhook_endpoints", None, ENDPOINT), "before"),
        (hook("UPDATE", "supplier_integrations", INTEGRATION, INTEGRATION), "before"),
        (hook("UPDATE", "supplier_integrations", INTEGRATION, INTEGRATION), "after"),
    ],
)
def test_a_supabase_change_never_carries_a_secret(document: Any, image: str) -> None:
    row = supabase(document)[image]
    assert not {"secret_key", "api_key", "api_credentials"} & set(row)


@pytest.mark.parametrize("op", ["c", "d", "r"])
def test_a_debezium_change_never_carries_a_secret(op: str) -> None:
    change = debezium("webhook_endpoints", op, ENDPOINT if op == "d" else None,
                      None if op == "d" else ENDPOINT)  # fmt: skip
    assert "secret_key" not in (change["after"] or change["before"])


def test_venue_api_credentials_never_leave() -> None:
    row = {"id": "v-1", "venue_id": "s-1", "api_credentials": {"api_key": "never"},
           "is_active": True}  # fmt: skip
    assert "api_credentials" not in supabase(hook("INSERT", "venue_integrations", row))["after"]


def test_columns_outside_the_contract_are_not_carried() -> None:
    after = supabase(hook("INSERT", "webhook_endpoints", ENDPOINT))["after"]
    assert "created_at" not in after


def test_wedding_vendors_is_keyed_by_id_as_on_the_postgres_path() -> None:
    row = {"id": "wv-1", "wedding_id": "w-1", "vendor_id": "s-1", "vendor_type": "florist"}
    change = supabase(hook("INSERT", "wedding_vendors", row))
    assert (change_key(change), change["primary_key"]) == (b"wedding_vendors:wv-1", ["id"])


def test_a_table_outside_the_contract_is_refused_with_422_naming_the_tables() -> None:
    with pytest.raises(UnknownTable, match=r"not in the source contract.*wedding_vendors") as exc:
        supabase(hook("INSERT", "auth_users", {"id": "u-1", "password": "x"}))
    assert (exc.value.status, exc.value.reason) == (422, "unknown_table")


def test_debezium_of_a_table_outside_the_contract_is_refused() -> None:
    with pytest.raises(UnknownTable):
        debezium("auth_users", "c", None, {"id": "u-1"})


def test_a_mapped_deployment_is_renamed_to_contract_names() -> None:
    mapping = ContractMapping(tables={"wedding_vendors": TableMapping(
        table="wedding_suppliers", columns={"vendor_id": "supplier_id"})})  # fmt: skip
    row = {"id": "wv-1", "wedding_id": "w-1", "supplier_id": "s-1", "vendor_type": "dj"}
    change = supabase(hook("INSERT", "wedding_suppliers", row), CONTRACT.mapped(mapping))
    assert (change["source"]["table"], change["after"]["vendor_id"]) == ("wedding_vendors", "s-1")


def test_state_tables_are_the_contracts() -> None:
    # the gateway writes these to wedsync.ingest.state too, as the CDC source does
    assert "wedding_vendors" in CONTRACT.state_tables()
    assert "form_responses" not in CONTRACT.state_tables()


def test_the_supabase_js_client_shape_is_refused_naming_the_shape_to_send() -> None:
    browser = {"schema": "public", "table": "wedding_vendors", "commit_timestamp": "2026-01-01",
               "eventType": "INSERT", "new": {"id": "wv-1"}, "old": {}, "errors": None}  # fmt: skip
    with pytest.raises(ConversionError, match=r"supabase-js.*\{type, table, schema, record"):
        supabase(browser)


def test_a_configured_primary_keys_table_is_refused_saying_the_contract_keys_rows() -> None:
    source = {"method": "none", "payload": "supabase",
              "primary_keys": {"wedding_vendors": ["wedding_id", "vendor_id"]}}  # fmt: skip
    with pytest.raises(ConfigurationError, match="primary_keys is no longer read"):
        parse_gateway_config({"sources": {"supabase": source}}, {})


def _platform_types() -> dict[tuple[str, str], str]:
    """(table, column) -> type as schemas/platform/platform.sql declares it."""
    sql = (REPO_ROOT / "schemas" / "platform" / "platform.sql").read_text()
    found: dict[tuple[str, str], str] = {}
    for table, body in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\n\);", sql, re.S):
        for line in body.splitlines():
            match = re.match(r"\s+(\w+) ([a-z ]+(?:\([0-9, ]+\))?(?:\[\])?)", line)
            if match:
                found[table, match[1]] = re.split(r" (?:NOT|PRIMARY|DEFAULT|REFERENCES|UNIQUE)",
                                                  match[2])[0]  # fmt: skip
    return found


def test_the_declared_types_are_the_platform_ddl_types() -> None:
    """What the HTTP path decodes a column as, when the change does not say, is its type in
    the platform's DDL (ids excepted: they are taken as they come)."""
    ddl = _platform_types()
    for table in CONTRACT.tables.values():
        for column in table.columns:
            if column.pg_type and (table.name, column.name) in ddl:
                assert pg_type(column.pg_type) == pg_type(ddl[table.name, column.name]), (
                    f"{table.name}.{column.name}"
                )
