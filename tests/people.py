"""Helpers for tests of people: users made through the registry, clients signed in through the API."""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import httpx

PASSWORD = "correct horse battery"


async def make_user(app: Any, tenant_id: int | None, role: str = "viewer", **fields: Any) -> dict[str, Any]:
    """Create a user (a platform admin with ``platform_admin=True``); returns its JSON with "password"."""
    email = fields.pop("email", f"u-{uuid.uuid4().hex[:10]}@example.com")
    password = fields.pop("password", PASSWORD)
    user, _ = await app.state.services.users.create(tenant_id, email, role=role, password=password, by="test", **fields)
    return {"id": user.id, "email": user.email, "role": user.role, "password": password, "tenant_id": tenant_id}


def new_client(app: Any, base_url: str = "http://testserver") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


async def sign_in(client: httpx.AsyncClient, user: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post("/api/v1/session", json={"email": user["email"], "password": user["password"]})
    assert resp.status_code == 200, resp.text
    return resp.json()


@asynccontextmanager
async def signed_in(app: Any, user: dict[str, Any], *, csrf: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """A client of its own holding ``user``'s session cookie (and sending its CSRF token unless told not to)."""
    async with new_client(app) as client:
        info = await sign_in(client, user)
        if csrf:
            client.headers["X-CSRF-Token"] = info["csrf_token"]
        yield client
