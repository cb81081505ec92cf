"""Notification channels of the caller's tenant (tenant key): webhook and e-mail, and their deliveries."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from telemetra.api.alert_schemas import ChannelAnswer, ChannelCreated, ChannelIn, ChannelList, DeliveryList
from telemetra.api.deps import ManageDep, ReadDep, ServicesDep, json_body_doc, read_model
from telemetra.api.errors import answer_doc, error_responses
from telemetra.api.params import IdPath
from telemetra.domain.alerts import channel_json, delivery_json

router = APIRouter(prefix="/api/v1/channels", tags=["alerts"], responses=error_responses(401, 403, 429))


@router.post(
    "",
    status_code=201,
    responses={**answer_doc(ChannelCreated, 201, "Created"), **error_responses(400, 409, 413, 415, 422)},
    openapi_extra=json_body_doc(ChannelIn),
    response_model=None,
    summary="Create a channel",
)
async def create_channel(request: Request, services: ServicesDep, principal: ManageDep) -> dict[str, Any]:
    """A webhook receives each notification as a JSON POST signed with `X-Telemetra-Signature:
    sha256=<hex HMAC-SHA256 of the body with the channel's secret>`, with an `Idempotency-Key` header; the
    secret is generated when absent and shown in this answer only. An e-mail channel sends through SMTP."""
    body = await read_model(request, services.settings, ChannelIn)
    channel, secret = await services.alerts.create_channel(principal.tenant_id, body.name, body.kind, body.config)
    answer: dict[str, Any] = {"channel": channel_json(channel)}
    if secret is not None:
        answer["secret"] = secret
    return answer


@router.get("", responses=answer_doc(ChannelList), response_model=None, summary="List channels")
async def list_channels(services: ServicesDep, principal: ReadDep) -> dict[str, Any]:
    return {"channels": [channel_json(c) for c in await services.store.alerts.list_channels(principal.tenant_id)]}


@router.get(
    "/{channel_id}",
    responses={**answer_doc(ChannelAnswer), **error_responses(404)},
    response_model=None,
    summary="One channel (secrets masked)",
)
async def get_channel(channel_id: IdPath, services: ServicesDep, principal: ReadDep) -> dict[str, Any]:
    return {"channel": channel_json(await services.alerts.get_channel(principal.tenant_id, channel_id))}


@router.put(
    "/{channel_id}",
    responses={**answer_doc(ChannelAnswer), **error_responses(400, 404, 409, 413, 415, 422)},
    openapi_extra=json_body_doc(ChannelIn),
    response_model=None,
    summary="Edit a channel",
)
async def update_channel(
    channel_id: IdPath, request: Request, services: ServicesDep, principal: ManageDep
) -> dict[str, Any]:
    """Replace the name and configuration; the kind stays (422 `channel_kind_fixed`). A `secret` or `password`
    left out, or sent back masked, keeps the current one."""
    body = await read_model(request, services.settings, ChannelIn)
    channel = await services.alerts.update_channel(principal.tenant_id, channel_id, body.name, body.kind, body.config)
    return {"channel": channel_json(channel)}


@router.delete("/{channel_id}", status_code=204, responses=error_responses(404), summary="Delete a channel")
async def delete_channel(channel_id: IdPath, services: ServicesDep, principal: ManageDep) -> Response:
    await services.alerts.delete_channel(principal.tenant_id, channel_id)
    return Response(status_code=204)


@router.post(
    "/{channel_id}/test",
    responses=error_responses(404),
    summary="Send a test notification through the channel",
)
async def test_channel(channel_id: IdPath, services: ServicesDep, principal: ManageDep) -> dict[str, Any]:
    """Sends a test notification now through the channel's own sender (a signed webhook POST with event
    `channel.test`, or a mail), within the same outbound rules as alerts, and answers what came of it:
    `{"delivered", "status_code", "error"}` (200 whatever the receiver said). The attempt appears in the
    delivery log. Role: admin."""
    result = await services.alerts.test_channel(principal.tenant_id, channel_id)
    return {"delivered": result.ok, "status_code": result.status_code, "error": result.error}


@router.get(
    "/{channel_id}/deliveries",
    responses={**answer_doc(DeliveryList), **error_responses(404)},
    response_model=None,
    summary="Delivery attempts, newest first",
)
async def deliveries(
    channel_id: IdPath, services: ServicesDep, principal: ReadDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    await services.alerts.get_channel(principal.tenant_id, channel_id)
    attempts = await services.store.alerts.list_deliveries(principal.tenant_id, channel_id, limit)
    return {"deliveries": [delivery_json(d) for d in attempts]}
