"""Alerts of the caller's tenant: list and acknowledge (tenant key)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from telemetra.api.alert_schemas import AlertAnswer, AlertList
from telemetra.api.deps import OperateDep, ReadDep, ServicesDep
from telemetra.api.errors import answer_doc, error_responses
from telemetra.api.params import IdPath, PageQuery
from telemetra.api.schemas import pagination
from telemetra.domain.alerts import alert_json

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"], responses=error_responses(401, 403, 429))


@router.get(
    "",
    responses={**answer_doc(AlertList), **error_responses(404, 422)},
    response_model=None,
    summary="List alerts, newest first",
)
async def list_alerts(
    services: ServicesDep,
    principal: ReadDep,
    status: Literal["active", "acknowledged", "cleared"] | None = None,
    severity: Literal["critical", "major", "minor", "warning", "info"] | None = None,
    device: Annotated[str | None, Query(description="A device id.")] = None,
    page: PageQuery = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """One alert per (rule, device) while it is open: `count` firing points, first and last values and times."""
    device_pk = (await services.devices.get_in_tenant(principal.tenant_id, device)).pk if device else None
    alerts, total = await services.store.alerts.list_alerts(
        principal.tenant_id,
        status=status,
        severity=severity,
        device_pk=device_pk,
        limit=per_page,
        offset=(page - 1) * per_page,
    )
    return {"alerts": [alert_json(a) for a in alerts], "pagination": pagination(page, per_page, total)}


@router.post(
    "/{alert_id}/ack",
    responses={**answer_doc(AlertAnswer), **error_responses(404)},
    response_model=None,
    summary="Acknowledge an alert",
)
async def acknowledge(alert_id: IdPath, services: ServicesDep, principal: OperateDep) -> dict[str, Any]:
    """active → acknowledged (it still clears by itself); an acknowledged or cleared alert is unchanged."""
    return {"alert": alert_json(await services.alerts.acknowledge(principal.tenant_id, alert_id))}
