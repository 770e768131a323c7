"""streams/logic/ is pure: no Kafka, HTTP, database or socket imports, and from streams only
streams.logic, streams.models, streams.errors and streams.topics."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LOGIC = Path(__file__).resolve().parents[2] / "streams" / "logic"
FORBIDDEN = frozenset(
    {"confluent_kafka", "faust", "aiokafka", "httpx", "aiohttp", "psycopg2", "socket", "requests"}
)
ALLOWED_STREAMS = ("streams.logic", "streams.models", "streams.errors", "streams.topics")
MODULES = sorted(LOGIC.rglob("*.py"))


def imported_names(path: Path) -> list[str]:
    """Every module name `path` imports (absolute; relative imports resolved to streams.logic)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                names.append("streams.logic" + (f".{node.module}" if node.module else ""))
            elif node.module == "streams":
                names.extend(f"streams.{alias.name}" for alias in node.names)
            elif node.module:
                names.append(node.module)
    return names


def violations(names: list[str]) -> list[str]:
    bad = []
    for name in names:
        root = name.split(".")[0]
        if root in FORBIDDEN or (
            root == "streams"
            and not any(
                name == allowed or name.startswith(allowed + ".") for allowed in ALLOWED_STREAMS
            )
        ):
            bad.append(name)
    return bad


def test_logic_package_has_modules() -> None:
    assert len(MODULES) > 1


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_logic_module_imports_nothing_impure(path: Path) -> None:
    assert violations(imported_names(path)) == []


@pytest.mark.parametrize(
    "source",
    [
        "import faust",
        "from confluent_kafka import Producer",
        "import socket",
        "from streams import metrics",
        "from streams.agents.app import Context",
        "import httpx.x",
    ],
)
def test_checker_catches_forbidden_import(source: str, tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(source + "\n")
    assert violations(imported_names(module)) != []


def test_checker_allows_the_pure_modules(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from streams.models import DomainEvent\nfrom streams import topics\n"
        "from streams.logic import transform\nimport json\n"
    )
    assert violations(imported_names(module)) == []
