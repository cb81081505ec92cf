"""Settings of the server itself: its database and admin key, HTTP listening and limits, logging."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator


def default_data_dir() -> str:
    """``$XDG_DATA_HOME/telemetra``, else ``~/.local/share/telemetra``: a place that does not depend on the
    directory a command runs in, so that every command of a machine finds the same database."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "telemetra")


class ServerSettings(BaseModel):
    """Database, admin key, HTTP server and logging (a group of ``Settings``, which reads the environment)."""

    data_dir: str = Field(
        default_factory=default_data_dir,
        description="Telemetra's own folder, whatever the working directory: the default SQLite database "
        "(`telemetra.db`) and the keys file live there. By default `$XDG_DATA_HOME/telemetra`, else "
        "`~/.local/share/telemetra`; created (owner only) when first needed.",
    )
    database_url: str = Field(
        default_factory=lambda fields: f"sqlite:///{Path(fields['data_dir']) / 'telemetra.db'}",
        description="Where data lives: `sqlite:///path.db` (embedded default: `telemetra.db` in "
        "`TELEMETRA_DATA_DIR`) or `postgresql://user@host/db`.",
    )
    admin_key: str | None = Field(
        None,
        repr=False,
        description="The operator's key for /api/v1/admin routes. When unset, one is generated at first "
        "start, stored hashed and printed once.",
    )
    host: str = Field("127.0.0.1", description="Interface `telemetra serve` listens on.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port `telemetra serve` listens on.")
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="Proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed "
        "(comma-separated addresses or networks; `*` for any): behind a load balancer "
        "or an ingress, its addresses, so that the per-address login limit counts "
        "clients, not the proxy.",
    )
    max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest request body (and MQTT or NATS payload) accepted; larger ones get 413."
    )
    max_header_bytes: int = Field(
        16_384,
        ge=1024,
        le=1_048_576,
        description="Largest total size of a request's headers; larger (or more than 100 headers) get 431.",
    )
    http_header_timeout_s: float = Field(
        10.0,
        gt=0,
        le=300,
        description="A request must send its whole header block within this many seconds of "
        "its first byte (or of the connection's opening), else the connection "
        "is closed: a client sending headers a byte at a time holds nothing long.",
    )
    http_max_connections: int = Field(
        2048,
        ge=1,
        description="Most HTTP connections `telemetra serve` holds open; one more is closed at once "
        "(keep it below the process's open-file limit).",
    )
    keys_file: str | None = Field(
        None,
        description="Where `telemetra serve` writes the keys it creates (the admin key at first start, "
        "the demo key) when its output is not a terminal, readable only by its owner; by "
        "default `<database file>.keys` beside a SQLite file, else `telemetra.keys` in "
        "`TELEMETRA_DATA_DIR`. On a terminal they are printed, never written.",
    )
    cors_origins: str = Field(
        "",
        description="Browser origins allowed to call the API (comma-separated, e.g. "
        "`https://dash.example.com`); none by default: CORS is off.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Lowest level of log lines written."
    )
    log_file: str | None = Field(None, description="Also write logs to this file, rotated at 10 MB with 5 backups.")
    log_format: Literal["text", "json"] = Field(
        "text",
        description="`json`: one JSON object a line (`time`, `level`, `logger`, `message`, and "
        "`exc_info` with a traceback), for log collectors.",
    )

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return url

    @field_validator("admin_key")
    @classmethod
    def _strong_admin_key(cls, key: str | None) -> str | None:
        if key is not None and len(key) < 24:
            raise ValueError("must be at least 24 characters (or unset to generate one)")
        return key

    def configure_logging_level(self) -> int:
        """Return the numeric logging level."""
        return logging.getLevelName(self.log_level)
