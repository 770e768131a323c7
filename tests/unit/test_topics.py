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
from streams.kafka.schema_store import SchemaStore
from streams.settings import REPO_ROOT

NAME_RE = re.compile(r"^wedsync\.(ingest|events|deliver|delivery|sla|inapp|calendar)(\.[a-z_]+)*$")
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


# what internal topic names end with, after the app id: "-route-seen", "-state_rows-changelog"
_APP_SUFFIXES = tuple(t.name.removeprefix("APP") for t in topics.app_topics("APP").all)


def _names_a_topic(value: str, names: set[str]) -> bool:
    """A string constant (alone, or one literal part of an f-string) that spells a topic
    name or the fixed part of one."""
    if value in names or re.match(r"^wedsync\.(ingest|events|deliver|delivery|sla)\b", value):
        return True
    word = not any(c.isspace() for c in value)
    return word and (value.endswith(_APP_SUFFIXES) or value.endswith("-changelog"))


def test_no_module_but_the_catalog_writes_a_topic_name() -> None:
    names = {t.name for t in topics.ALL}
    offenders = []
    for folder in (*CODE_DIRS, "tests"):
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            if path in (REPO_ROOT / "streams" / "topics.py", Path(__file__)):
                continue
            for line, value in _string_constants(path):
                if _names_a_topic(value, names):
                    offenders.append(f"{path.relative_to(REPO_ROOT)}:{line}: {value}")
    assert offenders == []


def test_the_check_sees_topic_names_inside_f_strings(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text('app = "a"\nx = f"{app}-route-seen"\ny = f"wedsync.deliver.{app}"\n')
    found = [v for _, v in _string_constants(source) if _names_a_topic(v, set())]
    assert found == ["-route-seen", "wedsync.deliver."]


def _in_fresh_interpreter(code: str, partitions: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WEDSYNC_PARTITIONS": partitions}
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


def test_partition_count_comes_from_the_deployment_setting() -> None:
    code = (
        "from streams import topics; from streams.agents.app import create_app; "
        "from streams.settings import load_settings; "
        "settings = load_settings(); topics.configure(settings.partitions); "
        "app, _ = create_app(settings, 'localhost:9092'); "
        "print(topics.EVENTS.partitions, topics.SLA_HEALTH.partitions, app.conf.topic_partitions)"
    )  # a fresh interpreter, configured as `wedsync` configures it at its edge
    result = _in_fresh_interpreter(code, "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", "1", "2"]  # Faust tables co-partitioned with the catalog


def test_the_command_line_gives_the_catalog_the_deployments_count() -> None:
    result = _in_fresh_interpreter(
        "from streams.app.cli import main; main(['topics', 'list'])", "2"
    )
    assert result.returncode == 0, result.stderr
    assert "wedsync.events" in result.stdout and " p=2 " in result.stdout


def test_importing_the_catalog_and_the_pure_logic_reads_no_environment() -> None:
    code = "import streams.topics, streams.logic.routing, streams.logic.normalize; print('ok')"
    result = _in_fresh_interpreter(code, "0")  # an invalid count: reading it would fail
    assert (result.returncode, result.stdout.strip()) == (0, "ok"), result.stderr


def test_an_invalid_partition_count_names_the_setting() -> None:
    code = "import sys; from streams.app.cli import main; sys.exit(main(['topics', 'list']))"
    result = _in_fresh_interpreter(code, "0")
    assert result.returncode == 2
    assert "ConfigurationError: WEDSYNC_PARTITIONS" in result.stderr


def test_internal_topics_are_named_after_the_app() -> None:
    names = [t.name for t in topics.app_topics("wedsync-prod").all]
    assert names == [
        "wedsync-prod-route-seen",
        "wedsync-prod-bookings-by-supplier",
        "wedsync-prod-state_rows-changelog",
        "wedsync-prod-bookings-changelog",
    ]
