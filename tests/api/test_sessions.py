"""Signing in and out: cookies, expiry with the clock moved, one answer for any wrong pair, the sign-in budgets,
CSRF, password changes and disabled users ending sessions at once."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest

from telemetra.domain.timeparse import utcnow
from telemetra.registry.sessions import SIGNIN_PASSWORD_CHECKS
from telemetra.store import store_from_url
from telemetra.store.users_base import UserChanges
from tests.people import PASSWORD, make_user, new_client, sign_in, signed_in


def _set_cookies(resp) -> dict[str, str]:
    """Each Set-Cookie header by cookie name, lower-cased."""
    return {h.split("=", 1)[0]: h.lower() for h in resp.headers.get_list("set-cookie")}


async def test_sign_in_who_and_sign_out(app, make_tenant) -> None:
    tenant = await make_tenant()
    user = await make_user(app, tenant["tenant"]["id"], "operator", name="Ana")
    async with new_client(app) as client:
        resp = await client.post("/api/v1/session", json={"email": user["email"].upper(), "password": PASSWORD})
        assert resp.status_code == 200, resp.text
        info = resp.json()
        assert info["user"] | {"created_at": None, "last_sign_in_at": None} == {
            "id": user["id"],
            "email": user["email"],
            "name": "Ana",
            "role": "operator",
            "platform_admin": False,
            "tenant_id": tenant["tenant"]["id"],
            "tenant_name": tenant["tenant"]["name"],
            "created_at": None,
            "last_sign_in_at": None,
        }
        assert info["user"]["last_sign_in_at"] is not None and info["expires_at"] and info["csrf_token"]
        cookies = _set_cookies(resp)
        session, csrf = cookies["telemetra_session"], cookies["telemetra_csrf"]
        for flag in ("httponly", "samesite=lax", "path=/"):
            assert flag in session
        assert "secure" not in session  # plain HTTP here
        assert "httponly" not in csrf and "samesite=lax" in csrf and "path=/" in csrf
        assert client.cookies["telemetra_csrf"] == info["csrf_token"]
        assert client.cookies["telemetra_session"].startswith("tlms_")

        who = await client.get("/api/v1/session")
        assert who.status_code == 200 and who.json()["user"]["id"] == user["id"]
        assert who.json()["csrf_token"] == info["csrf_token"]

        assert (await client.delete("/api/v1/session")).status_code == 403  # without the CSRF token
        out = await client.delete("/api/v1/session", headers={"X-CSRF-Token": info["csrf_token"]})
        assert out.status_code == 204
        assert "telemetra_session" not in client.cookies
        gone = await client.get("/api/v1/session")
        assert gone.status_code == 401 and gone.json()["code"] == "unauthorized"


async def test_the_session_id_is_stored_hashed(app, store, make_tenant) -> None:
    tenant = await make_tenant()
    user = await make_user(app, tenant["tenant"]["id"])
    async with signed_in(app, user) as client:
        session_id = client.cookies["telemetra_session"]
        table = "user_sessions"
        if store.backend == "sqlite":
            rows = await store._fetchall(f"SELECT id_hash FROM {table}", ())
        else:
            rows = await store._fetch(f"SELECT id_hash FROM {table}")
        stored = [bytes(r[0]) for r in rows]
        assert len(stored) == 1 and session_id.encode() not in stored[0] and len(stored[0]) == 32


async def test_secure_cookie_under_https(app, make_tenant) -> None:
    tenant = await make_tenant()
    user = await make_user(app, tenant["tenant"]["id"])
    async with new_client(app, "https://testserver") as client:
        resp = await client.post("/api/v1/session", json={"email": user["email"], "password": PASSWORD})
        assert resp.status_code == 200
        assert all("secure" in header for header in _set_cookies(resp).values())


async def test_wrong_email_and_wrong_password_get_the_same_answer_after_the_same_work(app, make_tenant) -> None:
    tenant = await make_tenant()
    user = await make_user(app, tenant["tenant"]["id"])
    disabled = await make_user(app, tenant["tenant"]["id"])
    await app.state.services.users.update(tenant["tenant"]["id"], disabled["id"], disabled=True, by="test")
    refused = SIGNIN_PASSWORD_CHECKS.labels("refused")
    answers = []
    async with new_client(app) as client:
        for email, password in (
            (user["email"], "wrong password!"),
            ("nobody@example.com", PASSWORD),
            (disabled["email"], PASSWORD),  # the right password of a disabled user
        ):
            before = refused._value.get()
            resp = await client.post("/api/v1/session", json={"email": email, "password": password})
            # An argon2 check ran whatever was wrong (a dummy hash for an unknown address): same time.
            assert refused._value.get() == before + 1
            answers.append((resp.status_code, resp.json(), "set-cookie" in resp.headers))
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0] == 401 and answers[0][1]["code"] == "invalid_credentials"
    assert answers[0][2] is False


async def test_idle_and_absolute_expiry_with_the_clock_moved(app, make_tenant) -> None:
    sessions = app.state.services.sessions
    t0 = utcnow()
    now = [t0]
    sessions.clock = lambda: now[0]
    tenant = await make_tenant()
    user = await make_user(app, tenant["tenant"]["id"])
    async with signed_in(app, user) as client:
        # Used within 8 h each time: the idle expiry moves along; the absolute one does not.
        for hours in range(7, 7 * 24, 7):
            now[0] = t0 + timedelta(hours=hours)
            assert (await client.get("/api/v1/session")).status_code == 200, hours
        now[0] = t0 + timedelta(days=7)
        resp = await client.get("/api/v1/session")
        assert resp.status_code == 401 and resp.json()["code"] == "unauthorized"
    now[0] = t0
    async with signed_in(app, user) as client:
        now[0] = t0 + timedelta(hours=7, minutes=59)
        assert (await client.get("/api/v1/devices")).status_code == 200
        now[0] = now[0] + timedelta(hours=8, seconds=1)  # idle past 8 h since the last use
        assert (await client.get("/api/v1/devices")).status_code == 401
        assert (await client.get("/api/v1/session")).status_code == 401  # and it was ended for good
        now[0] = t0 + timedelta(hours=8)
        assert (await client.get("/api/v1/session")).status_code == 401


async def test_five_failures_per_account_then_429(app, make_tenant) -> None:
    tenant = await make_tenant()
    user = await make_user(app, tenant["tenant"]["id"])
    async with new_client(app) as client:
        for _ in range(5):
            resp = await client.post("/api/v1/session", json={"email": user["email"], "password": "not it at all"})
            assert resp.status_code == 401
        locked = await client.post("/api/v1/session", json={"email": user["email"], "password": PASSWORD})
        assert locked.status_code == 429 and locked.json()["code"] == "too_many_attempts"
        assert int(locked.headers["Retry-After"]) > 60  # the 15-minute window
        # Another account from the same address is not locked.
        other = await make_user(app, tenant["tenant"]["id"])
        assert (
            await client.post("/api/v1/session", json={"email": other["email"], "password": PASSWORD})
        ).status_code == 200


async def test_a_successful_sign_in_starts_the_count_again(app, make_tenant) -> None:
    tenant = await make_tenant()
    user = await make_user(app, tenant["tenant"]["id"])
    async with new_client(app) as client:
        for _round in range(2):
            for _ in range(4):
                resp = await client.post("/api/v1/session", json={"email": user["email"], "password": "not it at all"})
                assert resp.status_code == 401
            await sign_in(client, user)


async def test_twenty_attempts_per_client_address_then_429(app) -> None:
    async with new_client(app) as client:
        for n in range(20):
            resp = await client.post("/api/v1/session", json={"email": f"x{n}@example.com", "password": "whatever12"})
            assert resp.status_code == 401
        resp = await client.post("/api/v1/session", json={"email": "fresh@example.com", "password": "whatever12"})
        assert resp.status_code == 429 and resp.json()["code"] == "too_many_attempts"
        assert 1 <= int(resp.headers["Retry-After"]) <= 60


async def test_csrf_token_required_for_every_change_carried_by_a_session(app, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    admin = await make_user(app, tenant["tenant"]["id"], "admin")
    rule = {"name": "hot", "key": "t", "condition": {"type": "threshold", "op": ">", "value": 30}}
    async with signed_in(app, admin, csrf=False) as client:
        token = client.cookies["telemetra_csrf"]
        assert (await client.get("/api/v1/devices")).status_code == 200  # reading needs no token
        for headers in ({}, {"X-CSRF-Token": "forged"}, {"X-CSRF-Token": ""}):
            for method, path, body in (
                ("POST", "/api/v1/rules", rule),
                ("POST", f"/api/v1/devices/{device['id']}/commands", {"name": "reboot"}),
                ("POST", "/api/v1/users", {"email": "new@example.com"}),
                ("PUT", "/api/v1/session/password", {"current_password": PASSWORD, "new_password": "x" * 12}),
                ("POST", "/api/v1/telemetry/batch", [{"device_id": device["id"], "data": {"t": 1}}]),
            ):
                resp = await client.request(method, path, json=body, headers=headers)
                assert resp.status_code == 403 and resp.json()["code"] == "csrf_failed", (path, headers, resp.text)
        assert (await client.get("/api/v1/rules")).json()["rules"] == []  # nothing was stored
        resp = await client.post("/api/v1/rules", json=rule, headers={"X-CSRF-Token": token})
        assert resp.status_code == 201, resp.text
        # The token of another session does not fit this one.
        async with signed_in(app, admin) as other:
            foreign = other.headers["X-CSRF-Token"]
        resp = await client.post("/api/v1/rules", json={**rule, "name": "b"}, headers={"X-CSRF-Token": foreign})
        assert resp.status_code == 403


async def test_password_change_ends_the_other_sessions(app, make_tenant) -> None:
    tenant = await make_tenant()
    user = await make_user(app, tenant["tenant"]["id"])
    async with signed_in(app, user) as mine, signed_in(app, user) as elsewhere:
        new = "a new long password"
        wrong = await mine.put(
            "/api/v1/session/password", json={"current_password": "nope nope nope", "new_password": new}
        )
        assert wrong.status_code == 403 and wrong.json()["code"] == "wrong_password"
        assert (await elsewhere.get("/api/v1/session")).status_code == 200  # a refused change ends nothing
        for bad in ("short", user["email"], user["email"].upper()):
            resp = await mine.put("/api/v1/session/password", json={"current_password": PASSWORD, "new_password": bad})
            assert resp.status_code == 422 and resp.json()["code"] == "invalid_password"
        resp = await mine.put("/api/v1/session/password", json={"current_password": PASSWORD, "new_password": new})
        assert resp.status_code == 204
        assert (await mine.get("/api/v1/session")).status_code == 200
        assert (await elsewhere.get("/api/v1/session")).status_code == 401
    async with new_client(app) as client:
        old = await client.post("/api/v1/session", json={"email": user["email"], "password": PASSWORD})
        assert old.status_code == 401
        await sign_in(client, {**user, "password": new})


async def test_a_disabled_user_is_signed_out_at_once(app, make_tenant) -> None:
    tenant = await make_tenant()
    admin = await make_user(app, tenant["tenant"]["id"], "admin")
    user = await make_user(app, tenant["tenant"]["id"], "operator")
    async with signed_in(app, admin) as boss, signed_in(app, user) as victim:
        assert (await victim.get("/api/v1/devices")).status_code == 200
        resp = await boss.patch(f"/api/v1/users/{user['id']}", json={"disabled": True})
        assert resp.status_code == 200 and resp.json()["disabled"] is True
        resp = await victim.get("/api/v1/devices")
        assert resp.status_code == 401
        assert (await victim.get("/api/v1/session")).status_code == 401
        denied = await victim.post("/api/v1/session", json={"email": user["email"], "password": PASSWORD})
        assert denied.status_code == 401 and denied.json()["code"] == "invalid_credentials"


async def test_a_user_disabled_by_another_process_is_refused_at_the_next_request(
    app, database_url, make_tenant
) -> None:
    tenant = await make_tenant()
    user = await make_user(app, tenant["tenant"]["id"])
    async with signed_in(app, user) as client:
        assert (await client.get("/api/v1/devices")).status_code == 200
        other = store_from_url(database_url)  # another process's store: nothing of this app's memory
        await other.open()
        try:
            await other.users.update_user(user["id"], UserChanges(disabled=True))
        finally:
            await other.close()
        assert (await client.get("/api/v1/devices")).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"email": "a\x00@example.com", "password": PASSWORD},
        {"email": "a@example.com", "password": "pass\x00word12"},
        {"email": 5, "password": PASSWORD},
        {"email": "a@example.com", "password": ["x"]},
        {"email": "a@example.com"},
        {"email": "a@example.com", "password": PASSWORD, "extra": 1},
        {"email": "a" * 10_000 + "@example.com", "password": PASSWORD},
        {"email": "a@example.com", "password": "p" * 5_000},
        [],
        "text",
    ],
)
async def test_hostile_sign_in_bodies_are_refused_with_a_json_error(app, body) -> None:
    async with new_client(app) as client:
        resp = await client.post("/api/v1/session", json=body)
        assert resp.status_code == 422, resp.text
        assert set(resp.json()) >= {"error", "code", "message"}
        assert "set-cookie" not in resp.headers


async def test_sign_in_refuses_huge_deep_and_non_json_bodies(app) -> None:
    async with new_client(app) as client:
        huge = await client.post(
            "/api/v1/session",
            content=b'{"email": "' + b"a" * 2_000_000 + b'"}',
            headers={"content-type": "application/json"},
        )
        assert huge.status_code == 413
        deep = await client.post(
            "/api/v1/session", content=b"[" * 500 + b"]" * 500, headers={"content-type": "application/json"}
        )
        assert deep.status_code in (400, 422) and "code" in deep.json()
        form = await client.post("/api/v1/session", data={"email": "a@example.com", "password": PASSWORD})
        assert form.status_code == 415  # a cross-site form cannot sign anyone in
        broken = await client.post("/api/v1/session", content=b"{", headers={"content-type": "application/json"})
        assert broken.status_code == 400


async def test_not_signed_in_and_forged_cookies(app) -> None:
    async with new_client(app) as client:
        assert (await client.get("/api/v1/session")).json()["code"] == "unauthorized"
        for forged in ("tlms_" + "A" * 43, "x" * 5000, "\x7f"):
            client.cookies.set("telemetra_session", forged)
            assert (await client.get("/api/v1/session")).status_code == 401
            assert (await client.get("/api/v1/devices")).status_code == 401
        client.cookies.clear()
        # Signing out without a session is harmless.
        assert (await client.delete("/api/v1/session")).status_code == 204


async def test_a_burst_of_guesses_gets_five_password_checks_at_most(app, make_tenant) -> None:
    tenant = await make_tenant()
    user = await make_user(app, tenant["tenant"]["id"])
    refused = SIGNIN_PASSWORD_CHECKS.labels("refused")
    before = refused._value.get()
    async with new_client(app) as client:
        answers = await asyncio.gather(
            *(
                client.post("/api/v1/session", json={"email": user["email"], "password": f"guess {n:04}"})
                for n in range(15)
            )
        )
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [401] * 5 + [429] * 10  # counted atomically before the check
    assert refused._value.get() - before == 5


async def test_audit_lines_name_who_and_never_a_secret(app, make_tenant, caplog) -> None:
    tenant = await make_tenant()
    admin = await make_user(app, tenant["tenant"]["id"], "admin")
    caplog.set_level(logging.INFO, logger="telemetra.audit")
    async with new_client(app) as client:
        await client.post("/api/v1/session", json={"email": admin["email"], "password": "a wrong password"})
        await client.post("/api/v1/session", json={"email": "Typed-My-Password@nowhere", "password": PASSWORD})
    async with signed_in(app, admin) as client:
        session_id = client.cookies["telemetra_session"]
        made = (await client.post("/api/v1/users", json={"email": "v@example.com"})).json()
        await client.patch(f"/api/v1/users/{made['user']['id']}", json={"role": "operator"})
        await client.patch(f"/api/v1/users/{made['user']['id']}", json={"disabled": True})
        reset = (await client.post(f"/api/v1/users/{made['user']['id']}/password")).json()["password"]
        await client.delete("/api/v1/session")
    text = "\n".join(r.getMessage() for r in caplog.records if r.name == "telemetra.audit")
    for expected in (
        f"sign-in failed user={admin['id']}",
        "sign-in failed email=sha256:",
        f"sign-in user={admin['id']}",
        f"user created id={made['user']['id']}",
        "user role changed",
        "from=viewer to=operator",
        "user disabled",
        "user password reset",
        f"sign-out user={admin['id']}",
    ):
        assert expected in text, (expected, text)
    for secret in (PASSWORD, "a wrong password", made["password"], reset, session_id, "typed-my-password"):
        assert secret not in text.lower() and secret not in text
