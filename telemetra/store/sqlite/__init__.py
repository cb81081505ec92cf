"""The SQLite backend: one file in WAL mode, the embedded default."""

from telemetra.store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
