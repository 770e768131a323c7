"""The topic catalog is the one place topic names live, and it is consistent."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from streams import topics
from streams.schema_store import SchemaStore
from streams.settings import REPO_ROOT

NAME_RE = re.compile(r"^wedsync\.(ingest|events|deliver|delivery|sla)(\.[a-z_]+)*$")
CODE_DIRS = ("streams", "connectors", "bench")


def test_topic_names_follow_the_convention() -> None:
    assert [t.name for t in topics.ALL if not NAME_RE.match(t.name)] == []


def test_topic_names_are_unique() -> None:
    names = [t.name for t in topics.ALL]
    assert len(names) == len(set(names))


def test_every_destination_has_deliver_retry_and_dead_letter_topics() -> None:
    for dest, triple in topics.DELIVER.items():
        assert triple.deliver.name == f"wedsync.deliver.{dest.value}"
        assert triple.retry.name == f"{triple.deliver.name}.retry"
        assert triple.dlq.name == f"{triple.deliver.name}.dlq"
        assert triple.retry.schema == triple.deliver.schema
        assert triple.dlq.schema is None


def test_every_schema_named_by_the_catalog_exists(schema_store: SchemaStore) -> None:
    for t in topics.ALL:
        if t.schema is not None:
            assert schema_store.latest(t.schema).key == t.schema


def test_unknown_topic_lookup_names_the_catalog() -> None:
    with pytest.raises(KeyError, match=r"streams/topics\.py"):
        topics.topic("wedsync.nope")


def _string_constants(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def test_no_module_but_the_catalog_writes_a_topic_name() -> None:
    names = {t.name for t in topics.ALL}
    offenders = []
    for folder in CODE_DIRS:
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            if path == REPO_ROOT / "streams" / "topics.py":
                continue
            for line, value in _string_constants(path):
                if value in names or value.startswith(("wedsync.deliver.", "wedsync.ingest.")):
                    offenders.append(f"{path.relative_to(REPO_ROOT)}:{line}: {value}")
    assert offenders == []


def _in_fresh_interpreter(code: str, partitions: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WEDSYNC_PARTITIONS": partitions}
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


def test_partition_count_comes_from_the_deployment_setting() -> None:
    code = (
        "from streams import topics; from streams.app import create_app; "
        "from streams.settings import Settings; "
        "app, _ = create_app(Settings(), 'localhost:9092'); "
        "print(topics.EVENTS.partitions, topics.SLA_HEALTH.partitions, app.conf.topic_partitions)"
    )
    result = _in_fresh_interpreter(code, "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", "1", "2"]  # Faust tables co-partitioned with the catalog


def test_an_invalid_partition_count_names_the_setting() -> None:
    result = _in_fresh_interpreter("import streams.topics", "0")
    assert result.returncode != 0
    assert "ConfigurationError: WEDSYNC_PARTITIONS" in result.stderr
