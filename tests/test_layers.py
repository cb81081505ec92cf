"""The layers of docs/architecture.md are a contract `make test` checks (import-linter, configured in
pyproject.toml): it passes on the code, and it fails on each upward import the structure step removed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
    )


def test_the_code_keeps_its_layers() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


# Each of these ran upward before the composition root and the domain records existed.
UPWARD = [
    ("telemetra/store/base.py", "from telemetra.alerts.service import AlertService"),
    ("telemetra/store/sqlite/commands.py", "from telemetra.commands.service import CommandService"),
    ("telemetra/ingest/pipeline.py", "from telemetra.api.app import create_app"),
    ("telemetra/ingest/runner.py", "from telemetra.runtime.services import Services"),
    ("telemetra/sim/inprocess.py", "from telemetra.api.deps import read_json"),
    ("telemetra/commands/mqtt.py", "from telemetra.ingest.sources.mqtt import MqttSource"),
    ("telemetra/store/postgres/store.py", "from telemetra.registry.devices import DeviceService"),
    ("telemetra/domain/telemetry.py", "from telemetra.settings import Settings"),
]


@pytest.mark.parametrize("path, line", UPWARD, ids=[p for p, _ in UPWARD])
def test_an_upward_import_breaks_the_contract(tmp_path: Path, path: str, line: str) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "telemetra", tree / "telemetra", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    target = tree / path
    target.write_text(target.read_text() + f"\n{line}  # an upward import\n")
    result = _lint(tree)
    assert result.returncode != 0 and "BROKEN" in result.stdout, result.stdout + result.stderr
