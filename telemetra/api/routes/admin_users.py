"""A platform admin's view of a tenant's people: list them, and add one (a new tenant's first admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from telemetra.api.deps import AdminDep, ServicesDep, json_body_doc, read_model
from telemetra.api.errors import error_responses
from telemetra.api.params import IdPath
from telemetra.api.user_schemas import UserCreate, user_public
from telemetra.registry.auth import UserPrincipal

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], responses=error_responses(401, 403))


def _actor(caller: Any) -> str:
    """Who made a change, for the audit log."""
    return f"user:{caller.user.id}" if isinstance(caller, UserPrincipal) else "admin key"


@router.get("/tenants/{tenant_id}/users", responses=error_responses(404), summary="A tenant's users")
async def list_tenant_users(tenant_id: IdPath, services: ServicesDep, _: AdminDep) -> dict[str, Any]:
    await services.tenants.get(tenant_id)
    return {"items": [user_public(u) for u in await services.users.list(tenant_id)]}


@router.post(
    "/tenants/{tenant_id}/users",
    status_code=201,
    responses=error_responses(400, 404, 409, 413, 415, 422),
    openapi_extra=json_body_doc(UserCreate),
    summary="Add a user to a tenant",
)
async def create_tenant_user(
    tenant_id: IdPath, request: Request, services: ServicesDep, principal: AdminDep
) -> dict[str, Any]:
    """As `POST /api/v1/users` of the tenant's admin: `password` in the answer is the generated one-time
    password (shown once) when none was given."""
    await services.tenants.get(tenant_id)
    body = await read_model(request, services.settings, UserCreate)
    user, generated = await services.users.create(
        tenant_id, body.email, name=body.name, role=body.role, password=body.password, by=_actor(principal)
    )
    return {"user": user_public(user), "password": generated}
