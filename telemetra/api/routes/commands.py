"""Commands: the tenant sends them to its devices and follows them; a device acknowledges them over HTTP."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from telemetra.api.deps import DeviceDep, OperateDep, ReadDep, ServicesDep, json_body_doc, read_document, read_model
from telemetra.api.errors import error_responses
from telemetra.api.params import OffsetQuery
from telemetra.domain.commands import ACK_STATUSES, STATUSES, command_public
from telemetra.errors import ValidationFailed

router = APIRouter(prefix="/api/v1/devices", tags=["commands"], responses=error_responses(401, 403))
device_router = APIRouter(prefix="/api/v1/devices", tags=["commands"], responses=error_responses(401, 403))

MAX_PARAMS_BYTES = 16_384


class CommandCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$", examples=["reboot"])
    params: dict[str, Any] = Field(default_factory=dict, examples=[{"delay_s": 5}])
    ttl_s: int | None = Field(
        None, ge=1, description="Seconds the command may wait for its device (default TELEMETRA_COMMAND_DEFAULT_TTL_S)."
    )


class CommandAck(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: str = Field(examples=["succeeded"], description=f"One of {', '.join(ACK_STATUSES)}.")
    result: Any = Field(None, examples=[{"uptime_s": 3}])


@router.post(
    "/{device_id}/commands",
    status_code=202,
    openapi_extra=json_body_doc(CommandCreate),
    responses=error_responses(400, 404, 413, 415, 422),
    summary="Send a command to a device",
)
async def create_command(
    device_id: str, request: Request, services: ServicesDep, principal: OperateDep
) -> dict[str, Any]:
    """Queue a command; it goes out at once when the device is online, else when it comes back, unless its
    TTL runs out first. Follow it with GET .../commands/{id}."""
    device = await services.devices.get_in_tenant(principal.tenant_id, device_id)
    body = await read_model(request, services.settings, CommandCreate)
    ttl_s = body.ttl_s or services.settings.command_default_ttl_s
    if ttl_s > services.settings.command_max_ttl_s:
        raise ValidationFailed(f"'ttl_s' may be at most {services.settings.command_max_ttl_s}", code="invalid_ttl")
    if len(repr(body.params)) > MAX_PARAMS_BYTES:
        raise ValidationFailed(f"'params' is larger than {MAX_PARAMS_BYTES} bytes", code="params_too_large")
    command = await services.commands.create(device, body.name, body.params, ttl_s)
    return {"message": "Command accepted", "command": command_public(command)}


@router.get("/{device_id}/commands", responses=error_responses(404, 422), summary="A device's commands")
async def list_commands(
    device_id: str,
    services: ServicesDep,
    principal: ReadDep,
    status: Annotated[str | None, Query(pattern="^(" + "|".join(STATUSES) + ")$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: OffsetQuery = 0,
) -> dict[str, Any]:
    """Newest first."""
    device = await services.devices.get_in_tenant(principal.tenant_id, device_id)
    commands, total = await services.store.commands.list_commands(device.pk, status=status, limit=limit, offset=offset)
    return {"commands": [command_public(c) for c in commands], "total": total, "limit": limit, "offset": offset}


@router.get("/{device_id}/commands/{command_id}", responses=error_responses(404), summary="One command")
async def get_command(device_id: str, command_id: str, services: ServicesDep, principal: ReadDep) -> dict[str, Any]:
    device = await services.devices.get_in_tenant(principal.tenant_id, device_id)
    return {"command": command_public(await services.commands.get(device, command_id))}


@device_router.post(
    "/commands/{command_id}/ack",
    openapi_extra=json_body_doc(CommandAck),
    responses=error_responses(400, 404, 409, 413, 415, 422),
    summary="Acknowledge a command (device key)",
)
async def ack_command(command_id: str, request: Request, services: ServicesDep, principal: DeviceDep) -> dict[str, Any]:
    """`received` confirms receipt; `succeeded` or `failed` with a `result` finishes the command."""
    doc = await read_document(request, services.settings)
    command = await services.commands.ack(principal.device, doc, command_id=command_id)
    return {"message": "Acknowledged", "command": {"id": command.id, "status": command.status}}
