"""Each role (and key scope) against a route of each kind, via the session; tenant isolation via a session as
via a key; platform admins; managing people through /api/v1/users."""

from __future__ import annotations

import pytest

from tests.people import PASSWORD, make_user, new_client, sign_in, signed_in

RULE = {"name": "hot", "key": "t", "condition": {"type": "threshold", "op": ">", "value": 30}}

# (route kind, method, path template, body, statuses for viewer / operator / admin)
ROUTES = [
    ("read", "GET", "/api/v1/devices", None, (200, 200, 200)),
    ("read", "GET", "/api/v1/devices/{device}/latest", None, (200, 200, 200)),
    ("command", "POST", "/api/v1/devices/{device}/commands", {"name": "reboot"}, (403, 202, 202)),
    ("desired state", "PUT", "/api/v1/devices/{device}/desired", {"state": {"on": True}}, (403, 200, 200)),
    ("alert acknowledge", "POST", "/api/v1/alerts/999999/ack", None, (403, 404, 404)),
    ("rule change", "POST", "/api/v1/rules", RULE, (403, 403, 201)),
    ("key change", "POST", "/api/v1/keys", {"name": "k"}, (403, 403, 201)),
    ("user management", "GET", "/api/v1/users", None, (403, 403, 200)),
    ("user management", "POST", "/api/v1/users", {"email": "{fresh}@example.com"}, (403, 403, 201)),
    ("device change", "PUT", "/api/v1/devices/{device}/credentials", {"password": "a device pw"}, (403, 403, 200)),
    ("ingest", "POST", "/api/v1/telemetry/batch", [{"device_id": "{device}", "data": {"t": 1}}], (403, 403, 200)),
]


def _fill(value, **names):
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, dict):
        return {k: _fill(v, **names) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, **names) for v in value]
    return value


@pytest.mark.parametrize("role_index, role", list(enumerate(["viewer", "operator", "admin"])))
async def test_each_role_against_each_kind_of_route(app, make_tenant, make_device, role_index, role) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    user = await make_user(app, tenant["tenant"]["id"], role)
    async with signed_in(app, user) as client:
        for n, (kind, method, path, body, statuses) in enumerate(ROUTES):
            names = {"device": device["id"], "fresh": f"fresh{n}-{role}"}
            resp = await client.request(method, _fill(path, **names), json=_fill(body, **names))
            assert resp.status_code == statuses[role_index], (role, kind, path, resp.text)
            if resp.status_code == 403:
                assert resp.json()["code"] == "forbidden_role"


async def test_key_scopes_map_to_roles(client, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    full = tenant["headers"]  # scope full: as an admin
    assert (await client.get("/api/v1/users", headers=full)).status_code == 200
    made = await client.post("/api/v1/keys", headers=full, json={"name": "gw", "scope": "ingest"})
    ingest = {"X-API-Key": made.json()["api_key"]}
    resp = await client.get("/api/v1/devices", headers=ingest)
    assert resp.status_code == 403 and resp.json()["code"] == "insufficient_scope"
    assert (await client.get("/api/v1/users", headers=ingest)).status_code == 403
    batch = await client.post("/api/v1/telemetry/batch", headers=ingest, json=[{"device_id": device["id"], "data": {}}])
    assert batch.status_code in (200, 422)  # accepted by the route (an empty message may be refused by content)
    sent = await client.post(f"/api/v1/devices/{device['id']}/telemetry", headers=ingest, json={"data": {"t": 1}})
    assert sent.status_code == 201
    # A device key is no tenant caller, whatever it asks.
    resp = await client.get("/api/v1/users", headers=device["headers"])
    assert resp.status_code == 403 and resp.json()["code"] == "wrong_key_kind"


async def test_another_tenants_things_are_404_via_a_session_as_via_a_key(app, client, make_tenant, make_device) -> None:
    mine, theirs = await make_tenant(), await make_tenant()
    their_device = await make_device(theirs)
    their_user = await make_user(app, theirs["tenant"]["id"])
    admin = await make_user(app, mine["tenant"]["id"], "admin")
    async with signed_in(app, admin) as session:
        for method, path, body in (
            ("GET", f"/api/v1/devices/{their_device['id']}", None),
            ("GET", f"/api/v1/devices/{their_device['id']}/latest", None),
            ("POST", f"/api/v1/devices/{their_device['id']}/commands", {"name": "reboot"}),
            ("PATCH", f"/api/v1/users/{their_user['id']}", {"role": "admin"}),
            ("POST", f"/api/v1/users/{their_user['id']}/password", None),
        ):
            by_session = await session.request(method, path, json=body)
            by_key = await client.request(method, path, json=body, headers=mine["headers"])
            assert by_session.status_code == by_key.status_code == 404, (path, by_session.text)
            assert by_session.json() == by_key.json()
        listed = (await session.get("/api/v1/users")).json()["items"]
        assert [u["id"] for u in listed] == [admin["id"]]
    async with new_client(app) as client2:
        await sign_in(client2, their_user)  # untouched: still a viewer with the same password
        assert (await client2.get("/api/v1/session")).json()["user"]["role"] == "viewer"


async def test_platform_admin_uses_the_admin_routes_only(app, make_tenant) -> None:
    tenant = await make_tenant()
    platform = await make_user(app, None, platform_admin=True)
    tenant_admin = await make_user(app, tenant["tenant"]["id"], "admin")
    async with signed_in(app, platform) as client:
        info = (await client.get("/api/v1/session")).json()
        assert info["user"]["platform_admin"] is True and info["user"]["tenant_id"] is None
        assert (await client.get("/api/v1/admin/tenants")).status_code == 200
        assert (await client.post("/api/v1/admin/tenants", json={"name": "made-by-a-person"})).status_code == 201
        resp = await client.get("/api/v1/devices")
        assert resp.status_code == 403 and resp.json()["code"] == "wrong_key_kind"
    async with signed_in(app, tenant_admin) as client:
        resp = await client.get("/api/v1/admin/tenants")
        assert resp.status_code == 403 and resp.json()["code"] == "forbidden_role"


async def test_admins_manage_the_people_of_their_tenant(app, make_tenant) -> None:
    tenant = await make_tenant()
    admin = await make_user(app, tenant["tenant"]["id"], "admin")
    async with signed_in(app, admin) as client:
        made = await client.post("/api/v1/users", json={"email": " New@Example.com ", "role": "operator"})
        assert made.status_code == 201, made.text
        user, one_time = made.json()["user"], made.json()["password"]
        assert user["email"] == "new@example.com" and user["role"] == "operator" and len(one_time) >= 16
        assert set(user) == {"id", "email", "name", "role", "disabled", "created_at", "last_sign_in_at"}
        taken = await client.post("/api/v1/users", json={"email": "NEW@example.com"})
        assert taken.status_code == 409 and taken.json()["code"] == "email_taken"
        chosen = await client.post("/api/v1/users", json={"email": "b@example.com", "password": "b's own password"})
        assert chosen.json()["password"] is None
        async with new_client(app) as newcomer:
            await sign_in(newcomer, {"email": "new@example.com", "password": one_time})
            changed = await client.patch(f"/api/v1/users/{user['id']}", json={"role": "viewer", "name": "Nina"})
            assert changed.json()["role"] == "viewer" and changed.json()["name"] == "Nina"
            # The new role applies at the newcomer's next request.
            resp = await newcomer.post(
                f"/api/v1/users/{user['id']}/password", headers={"X-CSRF-Token": newcomer.cookies["telemetra_csrf"]}
            )
            assert resp.status_code == 403
            reset = await client.post(f"/api/v1/users/{user['id']}/password")
            assert reset.status_code == 200 and reset.json()["password"] != one_time
            assert (await newcomer.get("/api/v1/session")).status_code == 401  # a reset ends their sessions
            refused = await newcomer.post("/api/v1/session", json={"email": "new@example.com", "password": one_time})
            assert refused.status_code == 401
            await sign_in(newcomer, {"email": "new@example.com", "password": reset.json()["password"]})
        for body in ({"disabled": True}, {"role": "viewer"}):
            own = await client.patch(f"/api/v1/users/{admin['id']}", json=body)
            assert own.status_code == 409 and own.json()["code"] == "own_account"
        assert (await client.patch("/api/v1/users/999999", json={"name": "x"})).status_code == 404


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("POST", "/api/v1/users", {"email": "a\x00b@example.com"}),
        ("POST", "/api/v1/users", {"email": "a@example.com", "name": "x\x00"}),
        ("POST", "/api/v1/users", {"email": "a@example.com", "role": "root"}),
        ("POST", "/api/v1/users", {"email": ["a@example.com"]}),
        ("POST", "/api/v1/users", {"email": "not an address"}),
        ("POST", "/api/v1/users", {"email": "a@example.com", "password": "short"}),
        ("POST", "/api/v1/users", {"email": "a@example.com", "password": "a@example.com"}),
        ("POST", "/api/v1/users", {"email": "a@example.com", "name": "n" * 101}),
        ("POST", "/api/v1/users", {"email": "a@example.com", "name": "tab\there"}),
        ("POST", "/api/v1/users", {"email": "x" * 400 + "@example.com"}),
        ("PATCH", "/api/v1/users/{me}", {"disabled": "yes"}),
        ("PATCH", "/api/v1/users/{me}", {"role": 1}),
        ("PATCH", "/api/v1/users/{me}", {"unknown": 1}),
        ("PATCH", "/api/v1/users/{me}", [1, 2]),
        ("PUT", "/api/v1/session/password", {"current_password": PASSWORD}),
        ("PUT", "/api/v1/session/password", {"current_password": 1, "new_password": "long enough pw"}),
        ("PUT", "/api/v1/session/password", {"current_password": PASSWORD, "new_password": "n\x00" * 8}),
    ],
)
async def test_hostile_user_bodies_are_refused_and_nothing_is_stored(app, make_tenant, method, path, body) -> None:
    tenant = await make_tenant()
    admin = await make_user(app, tenant["tenant"]["id"], "admin")
    async with signed_in(app, admin) as client:
        resp = await client.request(method, path.replace("{me}", str(admin["id"])), json=body)
        assert resp.status_code == 422, resp.text
        assert set(resp.json()) >= {"error", "code", "message"}
        assert [u["id"] for u in (await client.get("/api/v1/users")).json()["items"]] == [admin["id"]]
        assert (await client.get("/api/v1/session")).status_code == 200
    async with new_client(app) as again:
        await sign_in(again, admin)  # the password did not change


async def test_user_ids_out_of_range_and_huge_bodies(app, make_tenant) -> None:
    tenant = await make_tenant()
    admin = await make_user(app, tenant["tenant"]["id"], "admin")
    async with signed_in(app, admin) as client:
        for user_id in ("0", "-1", "99999999999999999999", "abc"):
            resp = await client.patch(f"/api/v1/users/{user_id}", json={"name": "x"})
            assert resp.status_code in (404, 422) and "code" in resp.json()
        huge = await client.post(
            "/api/v1/users",
            content=b'{"email": "' + b"a" * 2_000_000 + b'"}',
            headers={"content-type": "application/json"},
        )
        assert huge.status_code == 413
