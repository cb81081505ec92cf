"""The demo tenant of `telemetra serve --demo`: its key and its user's sign-in, kept in one file.

A second `make run`, even one that fails on a busy port, must not take the first server's key away: the
demo's key and demo@localhost's password are written once to a file beside the database, readable only by its owner, and every
later run reuses them while they still work. Only a key that no longer authenticates (revoked, expired,
or a database that was replaced) is issued again; the user is mended to the file's password.
"""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import typer

from telemetra.cli.common import app, load_cli_settings
from telemetra.errors import Unauthorized
from telemetra.registry.demo_user import DEMO_EMAIL, ensure_demo_user
from telemetra.registry.users import generate_password
from telemetra.runtime.processes import DEMO_TENANT
from telemetra.settings import Settings

__all__ = ["DEMO_TENANT", "DEMO_KEY_NAME", "DemoAccess", "demo_file", "ensure_demo", "demo_key"]

DEMO_KEY_NAME = "demo-run"


@dataclass(frozen=True)
class DemoAccess:
    tenant: str
    key: str
    email: str
    password: str
    path: Path


def demo_file(settings: Settings) -> Path:
    """``<database file>.demo`` beside a SQLite file, else ``demo.json`` in the data folder."""
    if settings.database_url.startswith("sqlite:///"):
        return Path(settings.database_url.removeprefix("sqlite:///") + ".demo")
    return Path(settings.data_dir) / "demo.json"


async def ensure_demo(services: Any, path: Path) -> DemoAccess:
    """The demo tenant exists and the key in ``path`` opens it; a key is issued only when that one cannot."""
    tenant = await services.store.get_tenant_by_name(DEMO_TENANT) or await services.store.create_tenant(DEMO_TENANT)
    with _locked(path):  # two servers starting at once issue one key and one password, not two
        saved = _read(path)
        key, password = saved.get("key"), saved.get("password")
        changed = False
        if not (isinstance(key, str) and await _opens(services, key, tenant.id)):
            _record, key = await services.keys.issue_tenant_key(tenant.id, name=DEMO_KEY_NAME)
            changed = True
        if not (isinstance(password, str) and len(password) >= 10):
            password, changed = generate_password(), True
        await ensure_demo_user(services.store, services.users, tenant.id, password)
        if changed:
            _write(path, {"tenant": DEMO_TENANT, "key": key, "email": DEMO_EMAIL, "password": password})
        else:
            os.chmod(path, 0o600)  # narrowed again, in case someone opened it up
        return DemoAccess(DEMO_TENANT, key, DEMO_EMAIL, password, path)


async def _opens(services: Any, key: str, tenant_id: int) -> bool:
    try:
        principal = await services.auth.authenticate(key)
    except Unauthorized:
        return False
    return principal.kind == "tenant" and principal.tenant_id == tenant_id


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(path: Path, data: dict[str, Any]) -> None:
    # Written to a private temporary file first: the file is never seen half-written or readable by others.
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (json.dumps(data, indent=2) + "\n").encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@app.command("demo-key")
def demo_key() -> None:
    """Print the demo tenant's key, from the file `serve --demo` keeps beside the database."""
    path = demo_file(load_cli_settings())
    key = _read(path).get("key")
    if not isinstance(key, str):
        typer.echo(f"error: no demo key in {path}; start the server once with `telemetra serve --demo`", err=True)
        raise typer.Exit(1)
    typer.echo(key)
