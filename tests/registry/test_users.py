"""Users and sessions in the store (both backends), the registry's rules for e-mails and passwords, and the
demo user of `serve --demo`."""

from __future__ import annotations

from datetime import timedelta

import pytest

from telemetra.domain.keys import hash_key
from telemetra.domain.timeparse import utcnow
from telemetra.errors import EmailTaken, ValidationFailed
from telemetra.registry.demo_user import DEMO_EMAIL, ensure_demo_user
from telemetra.registry.passwords import hash_password, verify_password
from telemetra.registry.users import UserService, check_user_password, normalize_email
from telemetra.store import Store
from telemetra.store.users_base import NewUser, SessionRecord, UserChanges


async def _user(store: Store, tenant_id: int | None, email: str = "a@example.com", **fields):
    new = NewUser(tenant_id=tenant_id, email=email, name="A", role="viewer", password_hash="h", **fields)
    return await store.users.create_user(new, utcnow())


def _session(user_id: int, n: int, at=None) -> SessionRecord:
    now = at or utcnow()
    return SessionRecord(hash_key(f"s{n}"), user_id, now, now, now + timedelta(days=7))


async def test_users_and_sessions_in_the_store(store: Store) -> None:
    tenant = await store.create_tenant("t")
    user = await _user(store, tenant.id)
    assert (user.tenant_id, user.email, user.role, user.disabled, user.platform_admin) == (
        tenant.id,
        "a@example.com",
        "viewer",
        False,
        False,
    )
    with pytest.raises(EmailTaken):
        await _user(store, tenant.id)
    platform = await _user(store, None, "root@example.com", platform_admin=True)
    assert [u.id for u in await store.users.list_users(tenant.id, 10)] == [user.id]
    assert [u.id for u in await store.users.list_users(None, 10)] == [platform.id]
    assert (await store.users.user_by_email("a@example.com"))[1] == "h"

    for n in range(3):
        await store.users.create_session(_session(user.id, n), max_per_user=20)
    found = await store.users.session(hash_key("s1"))
    assert found is not None and found[1].id == user.id and found[0].id_hash == hash_key("s1")
    # A password change keeps the caller's session only.
    assert await store.users.set_password(user.id, "h2", keep_session=hash_key("s1"))
    assert await store.users.session(hash_key("s0")) is None and await store.users.session(hash_key("s1"))
    assert await store.users.password_hash(user.id) == "h2"
    # Disabling ends every session in the same transaction.
    changed = await store.users.update_user(user.id, UserChanges(role="operator", disabled=True))
    assert changed is not None and changed.role == "operator" and changed.disabled
    assert await store.users.session(hash_key("s1")) is None
    assert await store.users.update_user(999_999, UserChanges(name="x")) is None


async def test_sessions_per_user_are_bounded_and_expired_ones_go(store: Store) -> None:
    tenant = await store.create_tenant("t")
    user = await _user(store, tenant.id)
    t0 = utcnow()
    for n in range(5):
        await store.users.create_session(_session(user.id, n, t0 + timedelta(seconds=n)), max_per_user=3)
    alive = [n for n in range(5) if await store.users.session(hash_key(f"s{n}"))]
    assert alive == [2, 3, 4]  # the oldest went
    deleted = await store.users.delete_expired_sessions(t0 + timedelta(days=8), t0)
    assert deleted == 3


async def test_touching_a_session_moves_its_last_use(store: Store) -> None:
    tenant = await store.create_tenant("t")
    user = await _user(store, tenant.id)
    await store.users.create_session(_session(user.id, 0), max_per_user=3)
    await store.users.touch_session(hash_key("s0"), utcnow() + timedelta(minutes=5))
    found = await store.users.session(hash_key("s0"))
    assert found is not None and found[0].last_seen_at > found[0].created_at


def test_email_and_password_rules() -> None:
    assert normalize_email("  Ana@Example.COM ") == "ana@example.com"
    assert normalize_email("demo@localhost") == "demo@localhost"
    for bad in ("", "ana", "a@b@c", "a b@c", "a\x00@b", "@b", "a@", 5, None, "x" * 251 + "@b.c"):
        with pytest.raises(ValidationFailed):
            normalize_email(bad)
    assert check_user_password("ten chars!", "a@b") == "ten chars!"
    for bad in ("nine char", "A@Example.com1"[:-1], "p" * 257, "with\x00nul..", 12345678901):
        with pytest.raises(ValidationFailed):
            check_user_password(bad, "a@example.com")


async def test_the_demo_user_is_mended_to_its_password(store: Store) -> None:
    tenant = await store.create_tenant("demo")
    users = UserService(store)
    first = "the demo's password"
    await ensure_demo_user(store, users, tenant.id, first)
    await ensure_demo_user(store, users, tenant.id, first)
    user, stored = await store.users.user_by_email(DEMO_EMAIL)
    assert user.role == "admin" and user.tenant_id == tenant.id and await verify_password(stored, first)
    # A database whose demo user has another password (the file is the truth), or was disabled, is mended.
    await store.users.set_password(user.id, await hash_password("something else"), keep_session=None)
    await store.users.update_user(user.id, UserChanges(disabled=True, role="viewer"))
    await ensure_demo_user(store, users, tenant.id, first)
    user, stored = await store.users.user_by_email(DEMO_EMAIL)
    assert user.role == "admin" and not user.disabled and await verify_password(stored, first)


async def test_the_upkeep_sweep_deletes_expired_sessions(app, make_tenant) -> None:
    from tests.people import make_user, signed_in

    sessions = app.state.services.sessions
    tenant = await make_tenant()
    user = await make_user(app, tenant["tenant"]["id"])
    async with signed_in(app, user) as client:
        assert await sessions.sweep() == 0
        t0 = utcnow()
        sessions.clock = lambda: t0 + timedelta(hours=9)  # idle past 8 h
        assert await sessions.sweep() == 1
        sessions.clock = utcnow
        assert (await client.get("/api/v1/session")).status_code == 401
