"""Alert rules of the caller's tenant (tenant key)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from telemetra.api.alert_schemas import RuleAnswer, RuleIn, RuleList
from telemetra.api.deps import ManageDep, ReadDep, ServicesDep, json_body_doc, read_model
from telemetra.api.errors import answer_doc, error_responses
from telemetra.api.params import IdPath
from telemetra.domain.alerts import rule_json

router = APIRouter(prefix="/api/v1/rules", tags=["alerts"], responses=error_responses(401, 403, 429))
BODY_ERRORS = (400, 409, 413, 415, 422)


@router.post(
    "",
    status_code=201,
    responses={**answer_doc(RuleAnswer, 201, "Created"), **error_responses(*BODY_ERRORS)},
    openapi_extra=json_body_doc(RuleIn),
    response_model=None,
    summary="Create a rule",
)
async def create_rule(request: Request, services: ServicesDep, principal: ManageDep) -> dict[str, Any]:
    """A rule watches a key of some devices; it raises one alert per device while its condition holds and
    clears it when the clear condition (or, without one, the condition's negation) holds."""
    body = await read_model(request, services.settings, RuleIn)
    rule = await services.alerts.create_rule(principal.tenant_id, body.name, body.definition_doc(), body.enabled)
    return {"rule": rule_json(rule)}


@router.get("", responses=answer_doc(RuleList), response_model=None, summary="List rules")
async def list_rules(services: ServicesDep, principal: ReadDep) -> dict[str, Any]:
    return {"rules": [rule_json(r) for r in await services.store.alerts.list_rules(principal.tenant_id)]}


@router.get(
    "/{rule_id}", responses={**answer_doc(RuleAnswer), **error_responses(404)}, response_model=None, summary="One rule"
)
async def get_rule(rule_id: IdPath, services: ServicesDep, principal: ReadDep) -> dict[str, Any]:
    return {"rule": rule_json(await services.alerts.get_rule(principal.tenant_id, rule_id))}


@router.put(
    "/{rule_id}",
    responses={**answer_doc(RuleAnswer), **error_responses(404, *BODY_ERRORS)},
    openapi_extra=json_body_doc(RuleIn),
    response_model=None,
    summary="Replace a rule",
)
async def update_rule(rule_id: IdPath, request: Request, services: ServicesDep, principal: ManageDep) -> dict[str, Any]:
    body = await read_model(request, services.settings, RuleIn)
    rule = await services.alerts.update_rule(
        principal.tenant_id, rule_id, body.name, body.definition_doc(), body.enabled
    )
    return {"rule": rule_json(rule)}


@router.delete("/{rule_id}", status_code=204, responses=error_responses(404), summary="Delete a rule and its alerts")
async def delete_rule(rule_id: IdPath, services: ServicesDep, principal: ManageDep) -> Response:
    await services.alerts.delete_rule(principal.tenant_id, rule_id)
    return Response(status_code=204)
