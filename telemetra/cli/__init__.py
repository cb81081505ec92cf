"""The `telemetra` command: serve, migrate, and manage tenants, devices and keys.

One module a group of commands; importing each registers its commands on ``app`` (``common.py``)."""

from __future__ import annotations

# Imported for what they register, in the order `telemetra --help` lists the commands.
from telemetra.cli import (
    demo,  # noqa: E402, F401
    edge,  # noqa: E402, F401
    errors_table,  # noqa: E402, F401
    manage,  # noqa: E402, F401
    mqtt,  # noqa: E402, F401
    rollup,  # noqa: E402, F401
    serve,  # noqa: E402, F401, I001
    upkeep,  # noqa: E402, F401
    users,  # noqa: E402, F401
)
from telemetra.cli.common import app

__all__ = ["app", "main"]


def main() -> None:
    app()
