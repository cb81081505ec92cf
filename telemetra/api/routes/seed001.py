"""Seed 001's contract (an energy-management API for heaters): POST /message and the hourly reports.

A thin adapter: messages go through the same pipeline as every other source, reports are read from the
same energy and statistics rollups as /api/v1/reports/energy. The caller is a tenant (a client) by its key.
"""

from __future__ import annotations

from datetime import timedelta, tzinfo
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from telemetra.analytics.aggregates import device_pieces
from telemetra.analytics.service import TimeRange
from telemetra.api.deps import IngestDep, Services, ServicesDep, TenantDep, json_body_doc, read_json, read_model
from telemetra.api.errors import error_responses
from telemetra.api.params import time_range, zone
from telemetra.api.queries import QUERY_ERRORS, check_span, run_query
from telemetra.api.routes.analytics import build_energy_report, tenant_devices
from telemetra.domain.calendar import HOUR, hourly_composable
from telemetra.domain.models import Device
from telemetra.domain.rollup import Aggregate
from telemetra.domain.timeparse import utcnow
from telemetra.errors import BadRequest, DeviceIdTaken, DeviceNotFound, ValidationFailed

router = APIRouter(tags=["seed 001: energy management"], responses=error_responses(429))

# What seed 001 keeps of a device's properties; everything else a device reports is dropped.
KEPT_PROPERTIES = ("instant_power", "temp_interior")
PROPERTY_MESSAGE = "devicePropertyMessage"
DEFAULT_REPORT_SPAN = timedelta(days=7)
MESSAGE_EXAMPLE = {"bizCode": PROPERTY_MESSAGE, "bizData": {
    "devId": "bfadafebb608a154206aqu", "productId": "ixhko1cls7lzpwsf", "dataId": "m-1",
    "properties": [{"code": "instant_power", "dpId": 1, "time": 1732631573782, "value": 2500}]},
    "ts": 1732631573782}


class BizCodeRefused(BadRequest):
    code = "unsupported_biz_code"


def _not_registered(device_id: str) -> DeviceNotFound:
    return DeviceNotFound(f"No device '{device_id[:128]}' in your tenant; a key of scope 'ingest' does not register "
                          "devices: register it first, or send its first message with a key of scope 'full'.")


async def _device_for(services: Services, tenant_id: int, device_id: str, *, may_register: bool) -> Device:
    """The tenant's device ``device_id``, registered on first sight as seed 001 does (``may_register``)."""
    device = await services.store.get_device(device_id)
    if device is None and not may_register:
        raise _not_registered(device_id)
    if device is None:
        try:
            device, _ = await services.devices.register(tenant_id, name=device_id, device_id=device_id,
                                                        device_type="heater")
        except DeviceIdTaken:  # registered meanwhile by a concurrent message
            device = await services.store.get_device(device_id)
    if device is None or device.tenant_id != tenant_id:
        raise DeviceNotFound(f"No device '{device_id[:128]}' in your tenant.")
    return device


@router.post("/message", responses=error_responses(400, 401, 403, 404, 413, 415, 422, 503),
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "example": MESSAGE_EXAMPLE}}}},
             summary="A device's property message (seed 001)")
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
    # Only a key of scope 'full' registers, as at /register; an ingest key's unknown device is refused as the
    # batch route refuses it (404 device_not_found), or it could claim ids (unique across tenants) first.
    may_register = principal.key.scope == "full"
    if await services.store.get_device(device_id) is None:
        if not may_register:
            raise _not_registered(device_id)
        # Validate before registering: a refused message must not leave a new device behind.
        unregistered = Device(pk=0, id=device_id, tenant_id=principal.tenant_id, name=device_id)
        services.telemetry.prepare(unregistered, kept_doc, utcnow(), source="seed001")
    device = await _device_for(services, principal.tenant_id, device_id, may_register=may_register)
    stored = await services.telemetry.accept(device, kept_doc, source="seed001")
    inserted = 0 if stored.duplicate else len(stored.points)
    return {"status": "ok", "inserted": inserted, "inserted_rows": inserted}


class SwitchCommand(BaseModel):
    """Seed 001's on/off order."""

    model_config = ConfigDict(extra="forbid")
    device_id: str = Field(min_length=1, max_length=128, examples=["bfadafebb608a154206aqu"])
    switch: StrictBool = Field(examples=[True])


@router.post("/send", responses=error_responses(400, 401, 403, 404, 413, 415, 422, 503),
             openapi_extra=json_body_doc(SwitchCommand), summary="Switch a device on or off (seed 001)")
async def send(request: Request, services: ServicesDep, principal: TenantDep) -> dict[str, Any]:
    """Publishes `{"device_id", "devId", "switch"}` on the `send_command` topic (TELEMETRA_SEND_COMMAND_TOPIC)
    and keeps the order in the device's commands."""
    body = await read_model(request, services.settings, SwitchCommand)
    device = await services.devices.get_in_tenant(principal.tenant_id, body.device_id)
    await services.commands.send_switch(device, body.switch)
    return {"status": "command sent", "device_id": device.id, "switch": body.switch}


StartQ = Annotated[str | None, Query(description="Inclusive; ISO date (midnight in tz) or datetime; default 7 days ago. "
                                                 "At most TELEMETRA_QUERY_MAX_RANGE_DAYS (366) before `end`.")]
EndQ = Annotated[str | None, Query(description="Exclusive; default now.")]
TzQ = Annotated[str | None, Query(description="IANA time zone of days and hours (default UTC).")]
DeviceQ = Annotated[str | None, Query(description="One device (default: all of the client's).")]


@router.get("/report", responses=error_responses(401, 403, 404, *QUERY_ERRORS),
            summary="Energy (Wh) per day and hour (seed 001)")
async def report(request: Request, services: ServicesDep, principal: TenantDep, start: StartQ = None,
                 end: EndQ = None, tz: TzQ = None, device: DeviceQ = None) -> dict[str, dict[str, float]]:
    """`{"2024-12-18": {"00:00": 24577.0, ...}}`: the energy of `instant_power` per local hour; hours
    without any known power are left out."""
    # Seed 001's report had no bounds; ours defaults to the last 7 days rather than everything, and refuses a
    # range wider than TELEMETRA_QUERY_MAX_RANGE_DAYS (422 range_too_large).
    built = await build_energy_report(request, services, principal.tenant_id, start=start, end=end, tz=tz,
                                      device=device, key="instant_power", default_span=DEFAULT_REPORT_SPAN)
    return built.by_day()


@router.get("/report/power", responses=error_responses(401, 403, 404, *QUERY_ERRORS),
            summary="Energy (Wh) per day and hour (seed 001; same as /report)")
async def report_power(request: Request, services: ServicesDep, principal: TenantDep, start: StartQ = None,
                       end: EndQ = None, tz: TzQ = None, device: DeviceQ = None) -> dict[str, dict[str, float]]:
    return await report(request, services, principal, start, end, tz, device)


@router.get("/report/temperature", responses=error_responses(401, 403, 404, *QUERY_ERRORS),
            summary="Mean interior temperature per day and hour (seed 001)")
async def report_temperature(request: Request, services: ServicesDep, principal: TenantDep, start: StartQ = None,
                             end: EndQ = None, tz: TzQ = None, device: DeviceQ = None) -> dict[str, dict[str, float]]:
    """`{"2024-12-18": {"00:00": 19.4, ...}}`: the mean of `temp_interior` per local hour over the devices."""
    zone_info = zone(tz)
    span = time_range(start, end, zone_info, DEFAULT_REPORT_SPAN)
    check_span(span.start, span.end, services.settings)  # before hourly_composable, which walks every hour
    composable = hourly_composable(zone_info, span.start, span.end, HOUR)
    if not composable:
        check_span(span.start, span.end, services.settings, raw=True)
    return await run_query(request, services.settings, lambda: _temperature_report(
        services, principal.tenant_id, device, span, zone_info, composable))


async def _temperature_report(services: Services, tenant_id: int, device: str | None, span: TimeRange,
                              zone_info: tzinfo, composable: bool) -> dict[str, dict[str, float]]:
    devices = ([await services.devices.get_in_tenant(tenant_id, device)] if device
               else await tenant_devices(services, tenant_id))
    pks = [d.pk for d in devices]
    if composable:
        pieces = [p for per in (await device_pieces(services.store, pks, "temp_interior", span.start, span.end)).values()
                  for p in per]
    else:  # a UTC hour straddles two local hours: read the raw points
        pieces = [(ts, Aggregate.of(ts, v)) for pk in pks
                  for ts, v in await services.store.numeric_series(pk, "temp_interior", span.start, span.end)]
    hours: dict[tuple[str, str], Aggregate] = {}
    for when, agg in pieces:
        local = when.astimezone(zone_info)
        label = (local.date().isoformat(), f"{local.hour:02d}:00")  # a repeated hour's two parts merge
        hours[label] = hours[label].merge(agg) if label in hours else agg
    out: dict[str, dict[str, float]] = {}
    for (day, hour), agg in sorted(hours.items()):
        out.setdefault(day, {})[hour] = round(agg.mean, 3)
    return out
