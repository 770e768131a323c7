"""Imports run one way (README, layout): the application (`streams.app`) may import anything;
the dev package (`streams.dev`) anything but the application; the rest of `streams` neither of
them nor `connectors`; `connectors` neither of them; `bench` nothing from `tests`. Every
import counts, at module level or inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from streams.settings import REPO_ROOT


def imported(source: str) -> set[str]:
    """Every module named by an import statement in `source` (absolute imports)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def forbidden(importer: str) -> tuple[str, ...]:
    """The packages `importer` must not import."""
    if within(importer, "streams.app"):
        return ("tests",)
    if within(importer, "streams.dev"):
        return ("streams.app", "tests")
    if within(importer, "streams"):
        return ("streams.app", "streams.dev", "connectors", "tests")
    if within(importer, "connectors"):
        return ("streams.app", "streams.dev", "tests")
    if within(importer, "bench"):
        return ("tests",)
    return ()


def violations(root: str) -> list[str]:
    found = []
    for path in sorted((REPO_ROOT / root).rglob("*.py")):
        if "schemas" in path.relative_to(REPO_ROOT).parts:
            continue
        importer = module_name(path)
        for name in sorted(imported(path.read_text())):
            for package in forbidden(importer):
                if within(name, package):
                    found.append(f"{importer} imports {name}")
    return found


@pytest.mark.parametrize("root", ["streams", "connectors", "bench"])
def test_imports_run_one_way(root: str) -> None:
    assert violations(root) == []


def test_a_function_level_import_counts() -> None:
    source = "def f():\n    from streams.dev.samples import demo_changes\n"
    assert "streams.dev.samples" in imported(source)


def test_the_rule_refuses_what_the_layout_forbids() -> None:
    assert "connectors" in forbidden("streams.routing.engine")
    assert "streams.dev" in forbidden("connectors.sinks.runtime")
    assert "streams.app" in forbidden("streams.dev.demo")
    assert "tests" in forbidden("bench.sinks")
    assert forbidden("streams.app.cli") == ("tests",)
