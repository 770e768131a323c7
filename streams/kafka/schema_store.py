"""The schema files under `schemas/`, parsed once, with every earlier version kept.

A schema's *key* is its path below `schemas/` without the version suffix, e.g.
`events/domain_event` for `schemas/events/domain_event.v2.avsc`. The highest version is the
one we write and read with; earlier versions stay so that old records remain readable and so
that `check_compatibility` can prove every new version reads all of them (BACKWARD_TRANSITIVE,
which is what a replayable log needs).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import avro.compatibility
import avro.schema
from fastavro import parse_schema as _parse_schema
from fastavro.schema import to_parsing_canonical_form

from streams.errors import IncompatibleSchema, SchemaError


def parse_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """fastavro's parsed form of a record schema (parse once, reuse for every record)."""
    return cast(dict[str, Any], _parse_schema(schema))


_FILE_RE = re.compile(r"^(?P<name>[a-z0-9_]+)\.v(?P<version>\d+)\.avsc$")


@dataclass(frozen=True)
class SchemaVersion:
    """One `.avsc` file: its key, version, raw JSON and fastavro-parsed form."""

    key: str
    version: int
    path: Path
    raw: dict[str, Any]
    parsed: dict[str, Any] = field(repr=False, compare=False)

    @cached_property
    def canonical(self) -> str:
        """Avro Parsing Canonical Form: equal for schemas that read and write alike."""
        return str(to_parsing_canonical_form(self.raw))

    @property
    def full_name(self) -> str:
        return str(self.parsed["name"])


class SchemaStore:
    """All schema files of one directory, grouped by key and ordered by version."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._versions: dict[str, list[SchemaVersion]] = {}
        if not self.root.is_dir():
            raise SchemaError(f"schema directory {root} does not exist; set WEDSYNC_SCHEMAS_DIR")
        for path in sorted(self.root.rglob("*.avsc")):
            version = _load(self.root, path)
            self._versions.setdefault(version.key, []).append(version)
        for key, versions in self._versions.items():
            versions.sort(key=lambda v: v.version)
            numbers = [v.version for v in versions]
            if numbers != list(range(1, len(numbers) + 1)):
                raise SchemaError(f"{key}: versions must be 1..N without gaps, found {numbers}")

    def keys(self) -> list[str]:
        return sorted(self._versions)

    def versions(self, key: str) -> list[SchemaVersion]:
        try:
            return self._versions[key]
        except KeyError:
            raise SchemaError(f"no schema '{key}' under {self.root}") from None

    def latest(self, key: str) -> SchemaVersion:
        return self.versions(key)[-1]

    def all_versions(self) -> list[SchemaVersion]:
        return [v for key in self.keys() for v in self._versions[key]]

    def check_compatibility(self) -> list[IncompatibleSchema]:
        """Every version must read data written by every earlier version of the same key.

        Returns the problems found (empty when all is well); each names the field at fault.
        """
        problems: list[IncompatibleSchema] = []
        checker = avro.compatibility.ReaderWriterCompatibilityChecker()
        for key in self.keys():
            versions = self._versions[key]
            for i, reader in enumerate(versions):
                reader_schema = avro.schema.parse(json.dumps(reader.raw))
                for writer in versions[:i]:
                    writer_schema = avro.schema.parse(json.dumps(writer.raw))
                    result = checker.get_compatibility(reader_schema, writer_schema)
                    if (
                        result.compatibility
                        is avro.compatibility.SchemaCompatibilityType.compatible
                    ):
                        continue
                    fields = ", ".join(sorted(str(m) for m in result.messages)) or "?"
                    where = ", ".join(sorted(result.locations)) or "/"
                    kinds = ", ".join(sorted(str(i.value) for i in result.incompatibilities))
                    problems.append(
                        IncompatibleSchema(
                            f"{key} v{reader.version} cannot read v{writer.version}: "
                            f"field {fields} at {where} ({kinds}); give the field a default, "
                            "or add a new schema instead of changing this one",
                            subject=key,
                            field=fields,
                        )
                    )
        return problems


def _load(root: Path, path: Path) -> SchemaVersion:
    match = _FILE_RE.match(path.name)
    if match is None:
        raise SchemaError(f"{path}: schema files are named '<name>.v<N>.avsc'")
    rel = path.parent.relative_to(root)
    key = f"{rel.as_posix()}/{match['name']}" if rel.parts else match["name"]
    try:
        raw = json.loads(path.read_text())
        parsed = parse_schema(raw)
        avro.schema.parse(json.dumps(raw))  # the strict reference parser must accept it too
    except Exception as exc:  # fastavro and avro raise a dozen types for a bad schema
        raise SchemaError(f"{path}: not a valid Avro schema: {exc}") from exc
    return SchemaVersion(key=key, version=int(match["version"]), path=path, raw=raw, parsed=parsed)
