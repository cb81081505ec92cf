"""`telemetra info` and `telemetra retention`: what an installation is, and its upkeep by hand."""

from __future__ import annotations

import platform
import sqlite3
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any

import typer

from telemetra.cli.common import JsonOpt, app, emit, load_cli_settings, masked_url, run_with_services

__all__ = ["info", "retention"]

# The settings whose value is a secret: `info` says they are set, never what they are.
SECRET_SETTINGS = ("admin_key", "jwt_secret")
# The libraries whose versions an operator is asked for first when something goes wrong.
REPORTED_PACKAGES = ("fastapi", "uvicorn", "pydantic", "asyncpg", "aiosqlite", "paho-mqtt", "nats-py", "redis")


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


@app.command()
def info(as_json: JsonOpt = False) -> None:
    """Print the database in use, the settings that differ from their defaults, and the versions."""
    from telemetra import __version__
    from telemetra.settings import Settings

    settings = load_cli_settings()
    defaults = Settings.model_construct()
    changed = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if name in ("database_url", "data_dir") or value == getattr(defaults, name):
            continue
        changed[f"TELEMETRA_{name.upper()}"] = "(set)" if name in SECRET_SETTINGS else value
    database: dict[str, Any] = {"url": masked_url(settings.database_url), "data_dir": settings.data_dir}
    if settings.database_url.startswith("sqlite:///"):
        path = Path(settings.database_url.removeprefix("sqlite:///")).resolve()
        database.update(path=str(path), exists=path.exists(), size_bytes=path.stat().st_size if path.exists() else 0)
    versions = {"telemetra": __version__, "python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    versions.update({name: _package_version(name) for name in REPORTED_PACKAGES})
    data = {"database": database, "settings": changed, "versions": versions}
    lines = [f"database: {database['url']}"]
    if "path" in database:
        state = f"{database['size_bytes']} bytes" if database["exists"] else "not created yet"
        lines.append(f"  file: {database['path']} ({state})")
    lines.append(f"data folder: {settings.data_dir}")
    lines.append("settings changed from their defaults:" if changed else "settings: all defaults")
    lines += [f"  {name}={value}" for name, value in changed.items()]
    lines.append("versions: " + ", ".join(f"{name} {v}" for name, v in versions.items()))
    emit(as_json, data, lines)


@app.command()
def retention(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be deleted; delete nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Apply every tenant's retention now (the server also does at start and every 6 hours)."""
    from telemetra.domain.timeparse import utcnow

    settings = load_cli_settings()

    async def work(services: Any) -> Any:
        now = utcnow()
        preview = await services.store.preview_retention(now)
        if dry_run:
            return preview, None
        return preview, await services.store.apply_retention(now)

    preview, applied = run_with_services(settings, work)
    tenants = [
        {"tenant": t, "retention_days": days, "cutoff": cutoff.isoformat(), "points": points, "messages": messages}
        for t, days, cutoff, points, messages in preview.tenants
    ]
    verb = "would delete" if dry_run else "deleted"
    lines = [
        f"tenant {t['tenant']}: keeps {t['retention_days']} days; {verb} {t['points']} points and "
        f"{t['messages']} messages older than {t['cutoff']}"
        for t in tenants
    ] or ["no tenant has a retention: nothing to delete"]
    if preview.partitions:
        lines.append(f"partitions {'that would be ' if dry_run else ''}dropped: " + ", ".join(preview.partitions))
    data: dict[str, Any] = {"dry_run": dry_run, "tenants": tenants, "partitions": preview.partitions}
    if applied is not None:
        data["rows_deleted"] = applied[0]
    emit(as_json, data, lines)
