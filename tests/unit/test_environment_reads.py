"""The environment is read at a process's edge only: the application (`streams.app`, which
parses each process's settings before any I/O and passes them down) and `load_settings()`,
the one model's reader. No other module of `streams` or `connectors` reads it: a connector
names its settings model and the application reads it (`SinkEnv.settings`); a library class
given no settings takes its model's declared defaults (`Model.model_construct()`)."""

from __future__ import annotations

import ast
from pathlib import Path

from streams.settings import REPO_ROOT

# the application, and development and demo code (its own edge: the demo, the dev brokers)
EDGES = ("streams/app/", "streams/dev/")
EDGE_FUNCTIONS = {("streams/settings.py", "load_settings")}


def _settings_classes() -> set[str]:
    names = set()
    for path in [*REPO_ROOT.glob("streams/**/*.py"), *REPO_ROOT.glob("connectors/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                getattr(b, "id", None) == "BaseSettings" for b in node.bases
            ):
                names.add(node.name)
    return names


def _reads(path: Path, settings_classes: set[str]) -> list[str]:
    """`where: what` for each read of the environment outside an edge function."""
    found: list[str] = []

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
        where = str(path.relative_to(REPO_ROOT))
        at_edge = (where, function) in EDGE_FUNCTIONS
        if not at_edge:
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("environ", "getenv")
                and getattr(node.value, "id", None) == "os"
            ):
                found.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} os.{node.attr}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in settings_classes
                and not node.args
                and not node.keywords
            ):
                found.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} {node.func.id}()")
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(ast.parse(path.read_text()), "")
    return found


def _product_modules() -> list[Path]:
    paths = [*REPO_ROOT.glob("streams/**/*.py"), *REPO_ROOT.glob("connectors/**/*.py")]
    return [
        p
        for p in paths
        if not str(p.relative_to(REPO_ROOT)).startswith(EDGES) and "schemas" not in p.parts
    ]


def test_no_library_code_reads_the_environment() -> None:
    classes = _settings_classes()
    found = [read for path in _product_modules() for read in _reads(path, classes)]
    assert found == []


def test_the_check_sees_a_settings_model_built_from_the_environment(tmp_path: Path) -> None:
    module = REPO_ROOT / "streams" / "logic" / "_probe_env_check.py"
    module.write_text("def helper():\n    return RouteSettings()\n")
    try:
        assert _reads(module, {"RouteSettings"}) == [
            "streams/logic/_probe_env_check.py:2 RouteSettings()"
        ]
    finally:
        module.unlink()
