"""A tenant's own keys (tenant key of scope full): list with usage, create, rotate with a grace period, revoke."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from telemetra.api.answer_schemas import KeyIssued, KeyList, KeyRevoked
from telemetra.api.deps import ManageDep, ServicesDep, json_body_doc, read_model
from telemetra.api.errors import answer_doc, error_responses
from telemetra.api.params import IdPath, PageQuery
from telemetra.api.schemas import KeyCreate, KeyRotate, key_public, pagination
from telemetra.domain.timeparse import utcnow

router = APIRouter(prefix="/api/v1/keys", tags=["keys"], responses=error_responses(401, 403, 429))


@router.get(
    "",
    responses=answer_doc(KeyList),
    response_model=None,
    summary="The tenant's keys, its devices' included, with their use",
)
async def list_keys(
    services: ServicesDep,
    principal: ManageDep,
    kind: Literal["tenant", "device"] | None = None,
    page: PageQuery = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 50,
) -> dict[str, Any]:
    """Each key with its status (`active`, `expired`, `revoked`), expiry, last use and use count (counts
    reach the database every `TELEMETRA_ACTIVITY_FLUSH_INTERVAL_S`). The keys themselves are never shown."""
    keys = await services.store.list_keys(tenant_id=principal.tenant_id, kind=kind)
    keys = [k for k in keys if k.kind != "admin"]
    shown = keys[(page - 1) * per_page : page * per_page]
    device_ids: dict[int, str] = {}
    for pk in {k.device_pk for k in shown if k.device_pk is not None}:
        device = await services.store.get_device_by_pk(pk)
        if device is not None:
            device_ids[pk] = device.id
    now = utcnow()
    return {
        "keys": [key_public(k, device_ids.get(k.device_pk) if k.device_pk is not None else None, now) for k in shown],
        "pagination": pagination(page, per_page, len(keys)),
    }


@router.post(
    "",
    status_code=201,
    responses={**answer_doc(KeyIssued, 201, "Created."), **error_responses(400, 413, 415, 422)},
    response_model=None,
    openapi_extra=json_body_doc(KeyCreate),
    summary="Create a tenant key",
)
async def create_key(request: Request, services: ServicesDep, principal: ManageDep) -> dict[str, Any]:
    """A new tenant key (`full` or `ingest`), shown this once."""
    body = await read_model(request, services.settings, KeyCreate)
    key, secret = await services.keys.issue_tenant_key(
        principal.tenant_id, scope=body.scope, name=body.name, expires_at=body.expires_at
    )
    return {"api_key": secret, "key": key_public(key, now=utcnow())}


@router.post(
    "/{key_id}/rotate",
    status_code=201,
    responses={**answer_doc(KeyIssued, 201, "Rotated."), **error_responses(400, 404, 409, 413, 415, 422)},
    response_model=None,
    openapi_extra=json_body_doc(KeyRotate, required=False),
    summary="Rotate a tenant or device key",
)
async def rotate_key(key_id: IdPath, request: Request, services: ServicesDep, principal: ManageDep) -> dict[str, Any]:
    """A new key of the same kind, scope, name (and device) is shown once; the old one works `grace_s`
    seconds more (0: revoked at once)."""
    has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
    body = await read_model(request, services.settings, KeyRotate) if has_body else KeyRotate()
    key, secret, old = await services.keys.rotate(
        principal.tenant_id, key_id, grace_s=body.grace_s, expires_at=body.expires_at
    )
    device = await services.store.get_device_by_pk(key.device_pk) if key.device_pk is not None else None
    device_id, now = device.id if device else None, utcnow()
    return {"api_key": secret, "key": key_public(key, device_id, now), "previous": key_public(old, device_id, now)}


@router.delete(
    "/{key_id}",
    responses={**answer_doc(KeyRevoked), **error_responses(404)},
    response_model=None,
    summary="Revoke a tenant or device key",
)
async def revoke_key(key_id: IdPath, services: ServicesDep, principal: ManageDep) -> dict[str, Any]:
    """The key stops working at once, on every process."""
    key = await services.keys.revoke(principal.tenant_id, key_id)
    return {"message": "Key revoked", "key": key_public(key, now=utcnow())}
