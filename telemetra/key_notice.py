"""Hand a newly created key to the operator without leaving it in a log.

A key printed on standard output is kept by whatever collects that output: under Docker, Kubernetes or
systemd, the container or journal logs, readable by anyone who may read logs. So a key is printed only
when the output is a terminal (a person is watching it); otherwise it is appended to a file only its
owner may read, and the output says where the key went, never the key.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, TextIO

from telemetra.settings import Settings

__all__ = ["KeyNotice", "default_keys_file"]


def default_keys_file(settings: Settings) -> Path:
    """``<database file>.keys`` beside a SQLite file, else ``telemetra.keys`` in the data folder."""
    if settings.keys_file:
        return Path(settings.keys_file)
    if settings.database_url.startswith("sqlite:///"):
        return Path(settings.database_url.removeprefix("sqlite:///") + ".keys")
    return Path(settings.data_dir) / "telemetra.keys"


class KeyNotice:
    """Print ``label: key`` on a terminal, or append it to an owner-only file and say so."""

    def __init__(self, path: Path, *, out: TextIO | None = None, echo: Callable[[str], None] | None = None) -> None:
        self.path = path
        self._out = out or sys.stdout
        self._echo = echo or (lambda line: print(line, file=self._out, flush=True))

    def show(self, label: str, key: str) -> None:
        if self._out.isatty():
            self._echo(f"{label}: {key}")
            return
        self._append(f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} {label}: {key}\n")
        self._echo(f"{label}: written to {self.path} (readable only by its owner)")

    def show_saved(self, label: str, key: str, saved_in: Path) -> None:
        """A key already kept in an owner-only file: printed on a terminal, else only where it is kept."""
        if self._out.isatty():
            self._echo(f"{label}: {key}  (kept in {saved_in})")
        else:
            self._echo(f"{label}: in {saved_in} (readable only by its owner)")

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # O_CREAT with 0o600 makes a new file private from its first byte; an existing one is narrowed too,
        # in case an operator created it with a looser mode.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, line.encode())
        finally:
            os.close(fd)
