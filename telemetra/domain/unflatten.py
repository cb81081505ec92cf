"""Rebuild nested values from point keys: ``voltages.0``, ``voltages.1`` -> ``voltages: [..]``; ``gps.lat`` ->
``gps: {"lat": ..}`` (the inverse of how ``domain.telemetry`` names the leaves of a message)."""

from __future__ import annotations

from typing import Any, cast

__all__ = ["unflatten"]


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    """Nest dotted keys; a level whose keys are exactly 0..n-1 becomes a list."""
    tree: dict[str, Any] = {}
    for key in sorted(flat):
        parts = key.split(".")
        node = tree
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = flat[key]
    # A dict, unless every top-level key is an index ("0", "1", ..): then _lists makes the top a list too,
    # which the callers (they spread or serve the result as an object) do not expect.
    return cast(dict[str, Any], _lists(tree))


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    node = {k: _lists(v) for k, v in node.items()}
    if node and all(k.isdigit() for k in node) and sorted(int(k) for k in node) == list(range(len(node))):
        return [node[str(i)] for i in range(len(node))]
    return node
