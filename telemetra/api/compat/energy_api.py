"""Seed 001's contract (document ``001_267305def3a319cf``): an energy-management API for heaters.

The shape kept: ``POST /message`` (a ``devicePropertyMessage``: ``{"bizCode", "bizData": {"devId",
"properties": [{"code", "dpId", "time", "value"}]}, "ts"}``, answered ``{"status": "ok", "inserted"}``),
``POST /send`` (``{"device_id", "switch"}``, answered ``{"status": "command sent"}``) and ``GET /report``
(``{"YYYY-MM-DD": {"HH:00": Wh}}``). A thin adapter: messages go through the same pipeline as every other
source and their devices are registered on first sight by the registry; /send is the command service's;
reports are the analytics service's, read from the same rollups as /api/v1/reports/energy. The caller is a
tenant (a client) by its key.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from telemetra.api import reports
from telemetra.api.deps import IngestDep, OperateDep, ReadDep, ServicesDep, json_body_doc, read_json, read_model
from telemetra.api.errors import error_responses
from telemetra.api.queries import QUERY_ERRORS
from telemetra.domain.models import Device
from telemetra.domain.timeparse import utcnow
from telemetra.errors import BadRequest, ValidationFailed

router = APIRouter(tags=["seed 001: energy management"], responses=error_responses(429))

# What seed 001 keeps of a device's properties; everything else a device reports is dropped.
KEPT_PROPERTIES = ("instant_power", "temp_interior")
PROPERTY_MESSAGE = "devicePropertyMessage"
DEFAULT_REPORT_SPAN = timedelta(days=7)
MESSAGE_EXAMPLE = {
    "bizCode": PROPERTY_MESSAGE,
    "bizData": {
        "devId": "bfadafebb608a154206aqu",
        "productId": "ixhko1cls7lzpwsf",
        "dataId": "m-1",
        "properties": [{"code": "instant_power", "dpId": 1, "time": 1732631573782, "value": 2500}],
    },
    "ts": 1732631573782,
}


class BizCodeRefused(BadRequest):
    """Seed 001's `POST /message` with a `bizCode` other than `devicePropertyMessage`."""

    code = "unsupported_biz_code"


@router.post(
    "/message",
    responses=error_responses(400, 401, 403, 404, 413, 415, 422, 503),
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"example": MESSAGE_EXAMPLE}}}},
    summary="A device's property message (seed 001)",
)
async def message(request: Request, services: ServicesDep, principal: IngestDep) -> dict[str, Any]:
    """Keeps `instant_power` and `temp_interior`; answers once they are committed. A device seen for the
    first time is registered in the caller's tenant when the key has scope `full`; with a key of scope
    `ingest` it is refused (404 `device_not_found`)."""
    doc = await read_json(request, services.settings)
    if not isinstance(doc, dict) or not isinstance(doc.get("bizData"), dict):
        raise ValidationFailed("a property message has 'bizCode', 'bizData' {'devId', 'properties'} and 'ts'")
    if doc.get("bizCode") != PROPERTY_MESSAGE:
        raise BizCodeRefused(f"bizCode must be '{PROPERTY_MESSAGE}', not {str(doc.get('bizCode'))[:40]!r}")
    biz = doc["bizData"]
    device_id, properties = biz.get("devId"), biz.get("properties")
    if not isinstance(device_id, str) or not device_id or not isinstance(properties, list):
        raise ValidationFailed("'bizData.devId' (a string) and 'bizData.properties' (a list) are required")
    kept = [p for p in properties if isinstance(p, dict) and p.get("code") in KEPT_PROPERTIES]
    if not kept:
        return {"status": "ok", "inserted": 0, "inserted_rows": 0}
    kept_doc = {**doc, "bizData": {**biz, "properties": kept}}

    def validate(unregistered: Device) -> None:  # before registering: a refused message leaves no device behind
        services.telemetry.prepare(unregistered, kept_doc, utcnow(), source="seed001")

    device = await services.devices.get_or_register(
        principal, device_id, device_type="heater", before_register=validate
    )
    stored = await services.telemetry.accept(device, kept_doc, source="seed001")
    inserted = 0 if stored.duplicate else len(stored.points)
    return {"status": "ok", "inserted": inserted, "inserted_rows": inserted}


class SwitchCommand(BaseModel):
    """Seed 001's on/off order."""

    model_config = ConfigDict(extra="forbid")
    device_id: str = Field(min_length=1, max_length=128, examples=["bfadafebb608a154206aqu"])
    switch: StrictBool = Field(examples=[True])


@router.post(
    "/send",
    responses=error_responses(400, 401, 403, 404, 413, 415, 422, 503),
    openapi_extra=json_body_doc(SwitchCommand),
    summary="Switch a device on or off (seed 001)",
)
async def send(request: Request, services: ServicesDep, principal: OperateDep) -> dict[str, Any]:
    """Publishes `{"device_id", "devId", "switch"}` on the `send_command` topic (TELEMETRA_SEND_COMMAND_TOPIC,
    whose `{device_id}` level, if any, is filled with the device's id) and keeps the order in the device's
    commands."""
    body = await read_model(request, services.settings, SwitchCommand)
    device = await services.devices.get_in_tenant(principal.tenant_id, body.device_id)
    await services.commands.send_switch(device, body.switch)
    return {"status": "command sent", "device_id": device.id, "switch": body.switch}


StartQ = Annotated[
    str | None,
    Query(
        description="Inclusive; ISO date (midnight in tz) or datetime; default 7 days ago. "
        "At most TELEMETRA_QUERY_MAX_RANGE_DAYS (366) before `end`."
    ),
]
EndQ = Annotated[str | None, Query(description="Exclusive; default now.")]
TzQ = Annotated[str | None, Query(description="IANA time zone of days and hours (default UTC).")]
DeviceQ = Annotated[str | None, Query(description="One device (default: all of the client's).")]


@router.get(
    "/report",
    responses=error_responses(401, 403, 404, *QUERY_ERRORS),
    summary="Energy (Wh) per day and hour (seed 001)",
)
@router.get(
    "/report/power",
    responses=error_responses(401, 403, 404, *QUERY_ERRORS),
    summary="Energy (Wh) per day and hour (seed 001; same as /report)",
    name="report_power",  # its operation id, as when it was a function of its own
)
async def report(
    request: Request,
    services: ServicesDep,
    principal: ReadDep,
    start: StartQ = None,
    end: EndQ = None,
    tz: TzQ = None,
    device: DeviceQ = None,
) -> dict[str, dict[str, float]]:
    """`{"2024-12-18": {"00:00": 24577.0, ...}}`: the energy of `instant_power` per local hour; hours
    without any known power are left out."""
    # Seed 001's report had no bounds; ours defaults to the last 7 days rather than everything, and refuses a
    # range wider than TELEMETRA_QUERY_MAX_RANGE_DAYS (422 range_too_large).
    built = await reports.energy_report(
        request,
        services,
        principal.tenant_id,
        start=start,
        end=end,
        tz=tz,
        device=device,
        key="instant_power",
        default_span=DEFAULT_REPORT_SPAN,
    )
    return built.by_day()


@router.get(
    "/report/temperature",
    responses=error_responses(401, 403, 404, *QUERY_ERRORS),
    summary="Mean interior temperature per day and hour (seed 001)",
)
async def report_temperature(
    request: Request,
    services: ServicesDep,
    principal: ReadDep,
    start: StartQ = None,
    end: EndQ = None,
    tz: TzQ = None,
    device: DeviceQ = None,
) -> dict[str, dict[str, float]]:
    """`{"2024-12-18": {"00:00": 19.4, ...}}`: the mean of `temp_interior` per local hour over the devices."""
    return await reports.mean_by_local_hour(
        request,
        services,
        principal.tenant_id,
        start=start,
        end=end,
        tz=tz,
        device=device,
        key="temp_interior",
        default_span=DEFAULT_REPORT_SPAN,
    )
