"""The source contract: which columns the pipeline reads from each platform table, their
types, and how a deployment names them.

The default names are the platform's own (`../shared/DOMAIN.md`, `schemas/platform/
platform.sql`). A deployment whose database names a table or column differently gives a
mapping (`ContractMapping`, from a TOML file, validated); the CDC source renames platform
names to contract names at the edge, so everything after it reads only contract names.

    contract = Contract.default().mapped(load_mapping(path))
    problems = contract.check("public.wedding_vendors", {"id": "uuid", ...})

`check` compares a live table's columns (name -> PostgreSQL type name) with the contract and
returns one `Problem` per missing or mistyped column, each naming `table.column` and what to
do. Secret columns (`secret_key`, `api_key`, `api_credentials`) must exist but never leave
the database: `carried` names the columns a change event may carry.

Pure: no I/O, no environment. Loading the mapping file is `load_mapping`'s only I/O.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from streams.errors import ConfigurationError
from streams.logic.urls import carries_credential, redacted

# Kinds of column and the PostgreSQL types (format_type names) each accepts.
KINDS: dict[str, frozenset[str]] = {
    "id": frozenset({"uuid", "text", "character varying", "integer", "bigint"}),
    "text": frozenset({"text", "character varying", "character", "citext"}),
    "jsonb": frozenset({"jsonb", "json"}),
    "text[]": frozenset({"text[]", "character varying[]"}),
    "date": frozenset({"date"}),
    "time": frozenset({"time without time zone", "time with time zone"}),
    "timestamptz": frozenset({"timestamp with time zone"}),
    "numeric": frozenset({"numeric", "integer", "smallint", "bigint", "real", "double precision"}),
    "integer": frozenset({"integer", "smallint", "bigint"}),
    "boolean": frozenset({"boolean"}),
}
# The type each kind is as the platform declares it (schemas/platform/platform.sql); ""
# for ids, which a deployment may keep as uuid, text or integers: decoded as they come.
DECLARED: dict[str, str] = {
    "id": "",
    "text": "text",
    "jsonb": "jsonb",
    "text[]": "text[]",
    "date": "date",
    "time": "time without time zone",
    "timestamptz": "timestamp with time zone",
    "numeric": "numeric",
    "integer": "integer",
    "boolean": "boolean",
}


@dataclass(frozen=True, slots=True)
class Column:
    name: str  # the contract name
    kind: str  # a key of KINDS
    required: bool = True  # False: read when present, not refused when absent
    secret: bool = False  # must exist; never carried in a change event
    url: bool = False  # an endpoint URL: carried without a credential it holds (`urls`)
    declared: str = ""  # the platform's type (platform.sql), when more exact than the kind's

    @property
    def pg_type(self) -> str:
        """The PostgreSQL type (`format_type` name) a value of this column is decoded as when
        the change does not say (the HTTP change path: `connectors/sources/webhooks`); ""
        when the kind fixes none."""
        return self.declared or DECLARED[self.kind]


@dataclass(frozen=True, slots=True)
class TableContract:
    name: str  # the contract name of the table
    columns: tuple[Column, ...]
    state: bool = False  # folded into routing state (streams.logic.state)
    extra_columns: bool = False  # other columns are carried too (core_fields: profile fields)
    platform_name: str = ""  # the table's name in the database ("" = same as `name`)
    renames: Mapping[str, str] = field(default_factory=dict)  # contract -> platform column
    key: tuple[str, ...] = ("id",)  # the primary key (contract names), as platform.sql has it

    @property
    def db_name(self) -> str:
        return self.platform_name or self.name

    def db_column(self, name: str) -> str:
        return self.renames.get(name, name)

    def to_contract(self) -> dict[str, str]:
        """Platform column name -> contract column name, for every renamed column."""
        return {platform: ours for ours, platform in self.renames.items()}

    def carried(self, platform_columns: list[str]) -> dict[str, str]:
        """Platform column -> contract name of every column a change event carries."""
        back = self.to_contract()
        known = {c.name: c for c in self.columns}
        out: dict[str, str] = {}
        for platform in platform_columns:
            ours = back.get(platform, platform)
            column = known.get(ours)
            if column is None:
                if self.extra_columns and platform not in self.renames.values():
                    out[platform] = ours
                continue
            if not column.secret:
                out[platform] = ours
        return out


@dataclass(frozen=True, slots=True)
class Problem:
    table: str
    column: str
    message: str

    def __str__(self) -> str:
        return f"{self.table}.{self.column}: {self.message}"


def _c(name: str, kind: str, declared: str = "", **kw: bool) -> Column:
    return Column(name, kind, declared=declared, **kw)


_STATE_FLAG = "is_active"
DEFAULT_TABLES: tuple[TableContract, ...] = (
    TableContract(
        "suppliers",
        (
            _c("id", "id"),
            _c("business_name", "text"),
            _c("email", "text"),
            _c("notification_preferences", "jsonb"),
        ),
        state=True,
    ),
    TableContract(
        "wedding_details",
        (
            _c("id", "id"),
            _c("couple_id", "id"),
            _c("wedding_date", "date"),
            _c("bride_name", "text"),
            _c("groom_name", "text"),
            _c("ceremony_time", "time"),
            _c("reception_time", "time"),
            _c("setup_time", "time"),
            _c("venue_id", "id"),
            _c("venue_name", "text"),
            _c("guest_count", "integer"),
            _c("special_requests", "text"),
            _c("venue_notes", "text"),
            _c("time_zone", "text", required=False),
            _c("updated_at", "timestamptz"),
        ),
        state=True,  # couple -> weddings, for the couple's suppliers
    ),
    TableContract(
        "wedding_vendors",
        (_c("id", "id"), _c("wedding_id", "id"), _c("vendor_id", "id"), _c("vendor_type", "text")),
        state=True,
    ),
    TableContract(
        "webhook_endpoints",
        (
            _c("id", "id"),
            _c("supplier_id", "id"),
            _c("endpoint_url", "text", url=True),
            _c("secret_key", "text", secret=True),
            _c("subscribed_events", "text[]"),
            _c(_STATE_FLAG, "boolean"),
        ),
        state=True,
    ),
    TableContract(
        "supplier_integrations",
        (
            _c("id", "id"),
            _c("supplier_id", "id"),
            _c("integration_type", "text"),
            _c("webhook_url", "text", url=True),
            _c("api_key", "text", secret=True),
            _c("settings", "jsonb"),
            _c(_STATE_FLAG, "boolean"),
        ),
        state=True,
    ),
    TableContract(
        "venue_integrations",
        (
            _c("id", "id"),
            _c("venue_id", "id"),
            _c("webhook_url", "text", url=True),
            _c("api_credentials", "jsonb", secret=True),
            _c("notification_preferences", "jsonb"),
            _c(_STATE_FLAG, "boolean"),
        ),
        state=True,
    ),
    TableContract(
        "email_integrations",
        (
            _c("id", "id"),
            _c("supplier_id", "id"),
            _c("platform_type", "text"),
            _c("api_key", "text", secret=True),
            _c("webhook_url", "text", url=True),
            _c("trigger_settings", "jsonb"),
            _c(_STATE_FLAG, "boolean"),
        ),
        state=True,
    ),
    TableContract(
        "form_responses",
        (
            _c("id", "id"),
            _c("supplier_id", "id"),
            _c("couple_id", "id"),
            _c("client_name", "text"),
            _c("form_name", "text"),
            _c("question_count", "integer"),
            _c("submitted_at", "timestamptz"),
        ),
    ),
    TableContract(
        "journey_progress",
        (
            _c("id", "id"),
            _c("supplier_id", "id"),
            _c("couple_id", "id"),
            _c("client_name", "text"),
            _c("milestone_name", "text"),
            _c("completion_percentage", "numeric", "numeric(5,2)"),
            _c("completed_at", "timestamptz"),
        ),
    ),
    TableContract("core_fields", (_c("id", "id"), _c("couple_id", "id")), extra_columns=True),
)


# ---- the operator's mapping ---------------------------------------------------------------
class TableMapping(BaseModel):
    """How one table is named in this deployment's database."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    table: str | None = None  # the platform's table name, when it differs
    columns: dict[str, str] = {}  # contract column -> platform column


class ContractMapping(BaseModel):
    """`[tables.<contract table>]` sections: `table = "..."` and `columns = {ours = "theirs"}`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tables: dict[str, TableMapping] = {}


def load_mapping(path: Path) -> ContractMapping:
    """The mapping file at `path`; ConfigurationError naming the bad entry otherwise."""
    try:
        raw = tomllib.loads(path.read_text())
        return ContractMapping.model_validate(raw)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"contract mapping {path}: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigurationError(f"contract mapping {path}: {where}: {first['msg']}") from exc


@dataclass(frozen=True)
class Contract:
    """Every source table the pipeline reads, by contract name."""

    tables: Mapping[str, TableContract]

    @classmethod
    def default(cls) -> Contract:
        return cls({t.name: t for t in DEFAULT_TABLES})

    def mapped(self, mapping: ContractMapping) -> Contract:
        """This contract with the deployment's names; ConfigurationError names what the
        mapping gets wrong (unknown table or column, two columns mapped to one)."""
        tables = dict(self.tables)
        for name, entry in mapping.tables.items():
            base = tables.get(name)
            if base is None:
                raise ConfigurationError(
                    f"contract mapping: unknown table {name!r}; the contract has "
                    f"{', '.join(sorted(tables))}"
                )
            known = {c.name for c in base.columns}
            for ours in entry.columns:
                if ours not in known:
                    raise ConfigurationError(
                        f"contract mapping: {name}.{ours} is not a contract column "
                        f"({', '.join(sorted(known))})"
                    )
            targets = list(entry.columns.values())
            if len(set(targets)) != len(targets):
                raise ConfigurationError(f"contract mapping: {name} maps two columns to one")
            tables[name] = replace(base, platform_name=entry.table or "", renames=entry.columns)
        return Contract(tables)

    def by_db_name(self) -> dict[str, TableContract]:
        """Platform table name -> its contract."""
        return {t.db_name: t for t in self.tables.values()}

    def state_tables(self) -> frozenset[str]:
        return frozenset(t.name for t in self.tables.values() if t.state)

    def check(self, table: str, actual: Mapping[str, str]) -> list[Problem]:
        """Problems of one live table (platform name; `actual` maps platform column names to
        PostgreSQL type names as `format_type` prints them); [] when it satisfies the
        contract or is not part of it."""
        contract = self.by_db_name().get(table)
        if contract is None:
            return []
        problems: list[Problem] = []
        for column in contract.columns:
            db_column = contract.db_column(column.name)
            found = actual.get(db_column)
            if found is None:
                if column.required:
                    problems.append(
                        Problem(
                            table,
                            db_column,
                            "missing; the pipeline reads it as "
                            f"{contract.name}.{column.name} ({column.kind}). Add the column, "
                            "or map the contract name to the platform's in the contract "
                            "mapping file (WEDSYNC_CDC_CONTRACT_FILE)",
                        )
                    )
                continue
            if found not in KINDS[column.kind]:
                problems.append(
                    Problem(
                        table,
                        db_column,
                        f"is {found}, the pipeline reads {column.kind} "
                        f"({', '.join(sorted(KINDS[column.kind]))}); change the column type "
                        "or map another column",
                    )
                )
        return problems


# ---- what a change event may carry of a value -------------------------------------------
def public_row(table: str, row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """`row` (contract names) as a change event of contract table `table` may carry it: an
    endpoint URL column's value without the credential it holds (`streams.logic.urls`:
    userinfo, query, a provider's secret path), and likewise every credential-bearing URL
    inside a jsonb column (an integration's settings). Secrets never reach here: they are
    not carried at all (`TableContract.carried`)."""
    if row is None:
        return None
    urls, documents = _URL_COLUMNS.get(table, frozenset()), _JSON_COLUMNS.get(table, frozenset())
    if not urls and not documents:
        return dict(row)
    out = dict(row)
    for name in urls & out.keys():
        if isinstance(out[name], str):
            out[name] = redacted(out[name])
    for name in documents & out.keys():
        if isinstance(out[name], str) and "://" in out[name]:
            out[name] = _public_json(out[name])
    return out


def rewrites_values(table: str) -> bool:
    """True when `public_row` may change a value of contract table `table` (it has an
    endpoint URL or a jsonb column); a row of any other table is carried as it is."""
    return bool(_URL_COLUMNS.get(table) or _JSON_COLUMNS.get(table))


def _public_json(text: str) -> str:
    try:
        document = json.loads(text)
    except ValueError:
        return text
    cleaned = _public_value(document)
    return text if cleaned == document else json.dumps(cleaned, ensure_ascii=False)


def _public_value(value: Any) -> Any:
    if isinstance(value, str) and "://" in value and carries_credential(value):
        return redacted(value)
    if isinstance(value, list):
        return [_public_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _public_value(v) for k, v in value.items()}
    return value


_URL_COLUMNS = {t.name: frozenset(c.name for c in t.columns if c.url) for t in DEFAULT_TABLES}
_JSON_COLUMNS = {
    t.name: frozenset(c.name for c in t.columns if c.kind == "jsonb" and not c.secret)
    for t in DEFAULT_TABLES
}
