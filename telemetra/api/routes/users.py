"""The people of a tenant, managed by its admins (a user of role admin, or a tenant key of scope full)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from telemetra.api.deps import ManageDep, ServicesDep, json_body_doc, read_model
from telemetra.api.errors import error_responses
from telemetra.api.params import IdPath
from telemetra.api.user_schemas import UserCreate, UserUpdate, user_public
from telemetra.errors import Conflict
from telemetra.registry.auth import TenantCaller, TenantUserPrincipal

router = APIRouter(prefix="/api/v1/users", tags=["users"], responses=error_responses(401, 403, 429))
BODY_ERRORS = (400, 413, 415, 422)


def _actor(caller: TenantCaller) -> str:
    """Who made a change, for the audit log."""
    return f"user:{caller.user.id}" if isinstance(caller, TenantUserPrincipal) else f"key:{caller.key.id}"


@router.get("", summary="The tenant's users")
async def list_users(services: ServicesDep, principal: ManageDep) -> dict[str, Any]:
    return {"items": [user_public(u) for u in await services.users.list(principal.tenant_id)]}


@router.post(
    "",
    status_code=201,
    responses=error_responses(*BODY_ERRORS, 409),
    openapi_extra=json_body_doc(UserCreate),
    summary="Create (invite) a user",
)
async def create_user(request: Request, services: ServicesDep, principal: ManageDep) -> dict[str, Any]:
    """`{"email", "name"?, "role"?, "password"?}` → 201 `{"user", "password"}`: `password` is the generated
    one-time password (shown once) when none was given, else null. An e-mail already used: 409."""
    body = await read_model(request, services.settings, UserCreate)
    user, generated = await services.users.create(
        principal.tenant_id, body.email, name=body.name, role=body.role, password=body.password, by=_actor(principal)
    )
    return {"user": user_public(user), "password": generated}


@router.patch(
    "/{user_id}",
    responses=error_responses(*BODY_ERRORS, 404, 409),
    openapi_extra=json_body_doc(UserUpdate),
    summary="Change a user's role or name, or disable them",
)
async def update_user(user_id: IdPath, request: Request, services: ServicesDep, principal: ManageDep) -> dict[str, Any]:
    """`{"role"?, "name"?, "disabled"?}`; disabling ends the user's sessions at once. Admins do not demote or
    disable themselves (409 `own_account`): a tenant would risk losing its last admin."""
    body = await read_model(request, services.settings, UserUpdate)
    if isinstance(principal, TenantUserPrincipal) and principal.user.id == user_id:
        if body.disabled or (body.role is not None and body.role != "admin"):
            raise Conflict("You cannot demote or disable yourself; ask another admin.", code="own_account")
    user = await services.users.update(
        principal.tenant_id, user_id, role=body.role, name=body.name, disabled=body.disabled, by=_actor(principal)
    )
    return user_public(user)


@router.post("/{user_id}/password", responses=error_responses(404, 422), summary="Reset a user's password")
async def reset_password(user_id: IdPath, services: ServicesDep, principal: ManageDep) -> dict[str, Any]:
    """A new one-time password, shown once; the user's sessions end."""
    return {"password": await services.users.reset_password(principal.tenant_id, user_id, by=_actor(principal))}
