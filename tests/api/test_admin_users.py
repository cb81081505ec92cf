"""A platform admin lists a tenant's users and adds one (a new tenant's first admin)."""

from __future__ import annotations

import httpx


async def test_platform_admin_adds_and_lists_a_tenants_users(client: httpx.AsyncClient, admin_headers, make_tenant):
    tenant = await make_tenant()
    path = f"/api/v1/admin/tenants/{tenant['tenant']['id']}/users"
    assert (await client.get(path, headers=admin_headers)).json() == {"items": []}

    made = await client.post(path, headers=admin_headers, json={"email": "first@example.com", "role": "admin"})
    assert made.status_code == 201, made.text
    assert made.json()["user"]["role"] == "admin" and len(made.json()["password"]) >= 10  # one-time, shown once
    chosen = await client.post(
        path, headers=admin_headers, json={"email": "second@example.com", "password": "a-long-password-1"}
    )
    assert chosen.status_code == 201 and chosen.json()["password"] is None

    listed = (await client.get(path, headers=admin_headers)).json()["items"]
    assert sorted(u["email"] for u in listed) == ["first@example.com", "second@example.com"]
    assert all("password" not in u for u in listed)
    # The tenant's own users route sees the same people.
    own = (await client.get("/api/v1/users", headers=tenant["headers"])).json()["items"]
    assert sorted(u["email"] for u in own) == ["first@example.com", "second@example.com"]

    taken = await client.post(path, headers=admin_headers, json={"email": "first@example.com"})
    assert taken.status_code == 409


async def test_only_a_platform_admin_and_only_a_real_tenant(client: httpx.AsyncClient, admin_headers, make_tenant):
    tenant = await make_tenant()
    path = f"/api/v1/admin/tenants/{tenant['tenant']['id']}/users"
    refused = await client.get(path, headers=tenant["headers"])
    assert refused.status_code == 403
    refused = await client.post(path, headers=tenant["headers"], json={"email": "x@example.com"})
    assert refused.status_code == 403
    assert (await client.get("/api/v1/admin/tenants/999999/users", headers=admin_headers)).status_code == 404
    missing = await client.post("/api/v1/admin/tenants/999999/users", headers=admin_headers, json={"email": "y@e.com"})
    assert missing.status_code == 404
    for bad in ({"email": "z@example.com", "role": "owner"}, {"email": 5}, {"email": "z@example.com", "x": 1}, []):
        answer = await client.post(path, headers=admin_headers, json=bad)
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.json()["code"] in ("validation_error", "invalid_body")
    assert (await client.get(path, headers=admin_headers)).json() == {"items": []}  # nothing stored
