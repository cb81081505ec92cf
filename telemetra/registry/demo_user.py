"""The demo user of `telemetra serve --demo`: demo@localhost, admin of the demo tenant.

Its password is kept in a file beside the database, readable by its owner only, so that later runs reuse it
(a person keeps signing in with the password they noted); the caller prints it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from telemetra.registry.passwords import verify_password
from telemetra.registry.users import UserService, generate_password
from telemetra.store import Store

logger = logging.getLogger(__name__)
__all__ = ["ensure_demo_user", "DEMO_EMAIL", "demo_password_file"]

DEMO_EMAIL = "demo@localhost"


def demo_password_file(keys_file: Path) -> Path:
    """Where the demo password is kept: beside the keys file (itself beside a SQLite database)."""
    return keys_file.with_name(keys_file.name.removesuffix(".keys") + ".demo-password")


def _read_password(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return text if len(text) >= 10 else None


def _write_password(path: Path, password: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created 0600 from its first byte; an existing file is narrowed too.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (password + "\n").encode())
    finally:
        os.close(fd)


async def ensure_demo_user(store: Store, users: UserService, tenant_id: int, password_file: Path) -> str:
    """Make sure demo@localhost exists in ``tenant_id`` as an admin with the password of ``password_file``
    (made on the first run); return that password."""
    password = _read_password(password_file)
    if password is None:
        password = generate_password()
        _write_password(password_file, password)
    else:
        os.chmod(password_file, 0o600)
    found = await store.users.user_by_email(DEMO_EMAIL)
    if found is None:
        await users.create(tenant_id, DEMO_EMAIL, name="Demo", role="admin", password=password, by="serve --demo")
        return password
    user, stored_hash = found
    if user.tenant_id != tenant_id or user.role != "admin" or user.disabled:
        await users.update(user.tenant_id, user.id, role="admin", disabled=False, by="serve --demo")
    if not await verify_password(stored_hash, password):  # the database or the file was replaced
        await users.set_password(user, password, by="serve --demo")
    return password
