"""The demo user of `telemetra serve --demo`: demo@localhost, admin of the demo tenant.

The caller keeps the password (beside the database, with the demo key) and hands it in at every start, so
that later runs reuse it: a person keeps signing in with the password they noted.
"""

from __future__ import annotations

import logging

from telemetra.registry.passwords import verify_password
from telemetra.registry.users import UserService
from telemetra.store import Store

logger = logging.getLogger(__name__)
__all__ = ["ensure_demo_user", "DEMO_EMAIL"]

DEMO_EMAIL = "demo@localhost"


async def ensure_demo_user(store: Store, users: UserService, tenant_id: int, password: str) -> None:
    """Make sure demo@localhost exists in ``tenant_id``, enabled, an admin, signing in with ``password``."""
    found = await store.users.user_by_email(DEMO_EMAIL)
    if found is None:
        await users.create(tenant_id, DEMO_EMAIL, name="Demo", role="admin", password=password, by="serve --demo")
        return
    user, stored_hash = found
    if user.tenant_id != tenant_id or user.role != "admin" or user.disabled:
        await users.update(user.tenant_id, user.id, role="admin", disabled=False, by="serve --demo")
    if not await verify_password(stored_hash, password):  # the database or the file was replaced
        await users.set_password(user, password, by="serve --demo")
