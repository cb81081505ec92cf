"""The compatibility adapters stay translation only: no route or adapter imports another one, and no adapter
reads the store (their logic is the services', where the rest of the API uses it too)."""

from __future__ import annotations

import ast
from pathlib import Path

import telemetra.api

API = Path(telemetra.api.__file__).parent
ADAPTERS = {"objects_api", "energy_api", "device_login_api", "hub_watch_api"}


def _modules(folder: str) -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text()) for p in sorted((API / folder).glob("*.py")) if p.stem != "__init__"}


def _imported(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_one_adapter_per_kept_contract() -> None:
    assert set(_modules("compat")) == ADAPTERS


def test_no_route_or_adapter_imports_another() -> None:
    wrong = {
        f"{folder}/{name}": sorted(
            n for n in _imported(tree) if n.startswith(("telemetra.api.routes.", "telemetra.api.compat."))
        )
        for folder in ("routes", "compat")
        for name, tree in _modules(folder).items()
    }
    assert not {where: names for where, names in wrong.items() if names}


def test_no_adapter_touches_the_store() -> None:
    wrong = {}
    for name, tree in _modules("compat").items():
        uses = [
            f"line {node.lineno}" for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr == "store"
        ]
        uses += sorted(n for n in _imported(tree) if n == "telemetra.store" or n.startswith("telemetra.store."))
        if uses:
            wrong[name] = uses
    assert not wrong
