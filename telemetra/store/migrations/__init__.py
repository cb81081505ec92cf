"""Versioned SQL migrations, one folder per backend: ``NNNN_name.sql`` applied in order, once."""

from __future__ import annotations

from importlib import resources

__all__ = ["migration_files"]


def migration_files(backend: str) -> list[tuple[int, str, str]]:
    """Return (version, name, sql) of every migration of ``backend``, in order."""
    folder = resources.files(__package__) / backend
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)
