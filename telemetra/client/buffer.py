"""The device's outbox: readings kept in a local SQLite file until the platform has them.

Oldest first, each with the ``msg_id`` it was given when read (so that a batch sent twice, because its answer
was lost, is stored once). Bounded: past ``max_messages`` the oldest are dropped and counted in ``overflow``
(kept in the file, so a restart does not forget it).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

__all__ = ["Outbox"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class Outbox:
    def __init__(self, path: str | Path, max_messages: int = 100_000) -> None:
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        self.max_messages = max_messages
        self._lock = threading.Lock()  # MQTT callbacks and the main loop may both touch it
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._count = self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]

    def __len__(self) -> int:
        return self._count

    @property
    def overflow(self) -> int:
        """Readings dropped, oldest first, because the outbox was full (since the file was created)."""
        row = self._db.execute("SELECT value FROM counters WHERE name = 'overflow'").fetchone()
        return row[0] if row else 0

    def put(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute("INSERT INTO outbox (body) VALUES (?)", (json.dumps(message, separators=(",", ":")),))
            excess = self._count + 1 - self.max_messages
            if excess > 0:
                self._db.execute(
                    "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)", (excess,)
                )
                self._db.execute(
                    "INSERT INTO counters VALUES ('overflow', ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                    (excess,),
                )
            self._db.execute("COMMIT")
            self._count = min(self._count + 1, self.max_messages)

    def oldest(self, limit: int) -> list[tuple[int, dict[str, Any]]]:
        """Up to ``limit`` messages, oldest first, with their sequence numbers."""
        with self._lock:
            rows = self._db.execute("SELECT seq, body FROM outbox ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [(seq, json.loads(body)) for seq, body in rows]

    def remove_through(self, seq: int) -> None:
        """Forget every message up to ``seq`` (the platform has them)."""
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE seq <= ?", (seq,))
            self._count = self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
