"""Every schema parses, round-trips through the codec, and documents every field; the
compatibility gate passes on the tree and fails, naming the field, on a breaking change."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastavro.utils import generate_many
from streams.kafka.codec import AvroCodec
from streams.kafka.registry import EmbeddedRegistry, fingerprint_id
from streams.kafka.schema_store import SchemaStore, SchemaVersion
from streams.settings import REPO_ROOT

STORE = SchemaStore(REPO_ROOT / "schemas")
ALL_VERSIONS = STORE.all_versions()


def _fields(schema: Any) -> list[dict[str, Any]]:
    """Every record field in a schema, nested records included."""
    found: list[dict[str, Any]] = []
    if isinstance(schema, dict):
        for field in schema.get("fields", []):
            found.append(field)
            found.extend(_fields(field["type"]))
        for key in ("items", "values"):
            found.extend(_fields(schema.get(key)))
    elif isinstance(schema, list):
        for branch in schema:
            found.extend(_fields(branch))
    return found


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=lambda v: f"{v.key}.v{v.version}")
def test_every_schema_round_trips_generated_records(version: SchemaVersion) -> None:
    codec = AvroCodec(EmbeddedRegistry(STORE), "subject", version.raw)
    for record in generate_many(version.parsed, 25):
        assert codec.decode(codec.encode(record)) == record


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=lambda v: f"{v.key}.v{v.version}")
def test_every_field_is_documented(version: SchemaVersion) -> None:
    undocumented = [f["name"] for f in _fields(version.raw) if not f.get("doc")]
    assert undocumented == []


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=lambda v: f"{v.key}.v{v.version}")
def test_every_record_carries_event_id_and_source_commit_time(version: SchemaVersion) -> None:
    names = {f["name"] for f in version.raw["fields"]}
    assert {"event_id", "source_ts_ms"} <= names


def test_schema_ids_are_the_same_in_another_process() -> None:
    raw = STORE.latest("events/domain_event").raw
    code = (
        "import json,sys; from streams.kafka.registry import fingerprint_id; "
        "print(fingerprint_id(json.load(sys.stdin)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(raw),
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(out.stdout) == fingerprint_id(raw)


def test_schema_id_ignores_docs_and_whitespace() -> None:
    raw = STORE.latest("events/domain_event").raw
    stripped = json.loads(json.dumps(raw).replace('"doc"', '"x-doc"'))
    assert fingerprint_id(stripped) == fingerprint_id(raw)


def test_tree_is_backward_transitively_compatible() -> None:
    assert STORE.check_compatibility() == []


def _write(folder: Path, name: str, fields: list[dict[str, Any]]) -> None:
    schema = {"type": "record", "name": "Thing", "namespace": "t", "fields": fields}
    (folder / name).write_text(json.dumps(schema))


@pytest.fixture
def breaking_tree(tmp_path: Path) -> Path:
    folder = tmp_path / "events"
    folder.mkdir()
    base = [{"name": "event_id", "type": "string"}]
    _write(folder, "thing.v1.avsc", base)
    _write(folder, "thing.v2.avsc", [*base, {"name": "venue_id", "type": "string"}])
    _write(folder, "thing.v3.avsc", [*base, {"name": "venue_id", "type": "string", "default": ""}])
    return tmp_path


def test_added_field_without_default_is_reported_with_its_name(breaking_tree: Path) -> None:
    problems = SchemaStore(breaking_tree).check_compatibility()
    assert [(p.subject, p.field) for p in problems] == [("events/thing", "venue_id")]


def test_compatibility_is_checked_against_all_earlier_versions(tmp_path: Path) -> None:
    """v3 is compatible with v2 but not with v1: transitive checking catches it."""
    folder = tmp_path / "events"
    folder.mkdir()
    _write(folder, "thing.v1.avsc", [{"name": "a", "type": "string"}])
    _write(
        folder,
        "thing.v2.avsc",
        [{"name": "a", "type": "string"}, {"name": "b", "type": "long", "default": 0}],
    )
    _write(folder, "thing.v3.avsc", [{"name": "b", "type": "long"}])
    problems = SchemaStore(tmp_path).check_compatibility()
    assert [str(p).split(":")[0] for p in problems] == ["events/thing v3 cannot read v1"]


def test_schemas_check_command_exits_non_zero_naming_the_field(breaking_tree: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "streams.app.cli", "schemas", "check", "--dir", str(breaking_tree)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "venue_id" in result.stderr


def test_schemas_check_command_passes_on_the_tree() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "streams.app.cli", "schemas", "check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=lambda v: f"{v.key}.v{v.version}")
def test_union_hints_write_the_same_bytes_as_plain_fastavro(version: SchemaVersion) -> None:
    import io

    from fastavro import schemaless_writer

    codec = AvroCodec(EmbeddedRegistry(STORE), "subject", version.raw)
    for record in generate_many(version.parsed, 25):
        plain = io.BytesIO()
        schemaless_writer(plain, version.parsed, record)
        assert codec.encode(record)[5:] == plain.getvalue()
