"""The configuration reference (docs/configuration.md), written from the settings class so it cannot drift.

`python -m telemetra.settings.reference > docs/configuration.md` rewrites it; a test fails when it is stale.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from telemetra.settings.access import AccessSettings
from telemetra.settings.ingest import IngestSettings
from telemetra.settings.processing import ProcessingSettings
from telemetra.settings.server import ServerSettings
from telemetra.settings.transport import TransportSettings

__all__ = ["reference_markdown"]

GROUPS: list[tuple[str, type[BaseModel]]] = [
    ("Server, database and logs", ServerSettings),
    ("Ingest", IngestSettings),
    ("Queries, rules and notifications", ProcessingSettings),
    ("Brokers, commands and live streams", TransportSettings),
    ("Access: tokens, logins, rate limits, Redis", AccessSettings),
]

# Defaults that are computed or secret, said in words rather than as the value of this machine.
DEFAULT_IN_WORDS = {
    "data_dir": "`$XDG_DATA_HOME/telemetra`, else `~/.local/share/telemetra`",
    "database_url": "`sqlite:///` + `TELEMETRA_DATA_DIR/telemetra.db`",
    "admin_key": "generated at first start",
    "keys_file": "beside the database",
}


def _default(name: str, default: Any) -> str:
    if name in DEFAULT_IN_WORDS:
        return DEFAULT_IN_WORDS[name]
    if default is None or default is PydanticUndefined:
        return "none"
    if default == "":
        return "empty"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    return f"`{default}`"


def reference_markdown() -> str:
    lines = [
        "# Configuration",
        "",
        "Every setting of Telemetra: an environment variable, or a line of a `.env` file in the working",
        "directory. A wrong value stops the start with a message that names the setting. `telemetra info`",
        "prints the settings of a machine that differ from these defaults.",
        "",
        "This page is written from the settings class (`python -m telemetra.settings.reference >",
        "docs/configuration.md`); a test fails when it is out of date.",
    ]
    for title, group in GROUPS:
        lines += ["", f"## {title}", "", "| variable | default | meaning |", "|---|---|---|"]
        for name, field in group.model_fields.items():
            default = field.default
            meaning = " ".join((field.description or "").split()).replace("|", "\\|")
            lines.append(f"| `TELEMETRA_{name.upper()}` | {_default(name, default)} | {meaning} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(reference_markdown(), end="")
