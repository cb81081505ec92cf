"""Seed 003's contract (document ``003_64d2b34654f5ddd8``): a Raspberry Pi's sensor API with device login.

The shape kept: ``POST /auth/login`` ``{"device_id", "password"}`` answered ``{"token"}``, then ``POST /data``
with the sensor object (``machine_id``, ``timestamp``, ``acceleration_x``...) and the token in a ``token``
header. A thin adapter over the registry's device login and the telemetry service.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, ConfigDict, Field

from telemetra.api.deps import ServicesDep, enforce_rate_limit, json_body_doc, read_model
from telemetra.api.errors import error_responses

router = APIRouter(tags=["seed 003: device login"])

# What the original answers once the data is stored ("data received").
DATA_STORED_MESSAGE = "Données reçues"
BEARER = "bearer "


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    device_id: str = Field(min_length=1, max_length=128, examples=["raspberry1"])
    password: str = Field(min_length=1, max_length=1024, examples=["password123"])


class SensorData(BaseModel):
    """Seed 003's sensor object; every field is stored as a point of the device (`machine_id` too)."""

    model_config = ConfigDict(extra="allow")
    machine_id: int = Field(examples=[1])
    timestamp: datetime = Field(
        description="ISO 8601; a time without offset is UTC.", examples=["2025-03-18T14:30:00Z"]
    )
    acceleration_x: float = Field(examples=[1.2])
    acceleration_y: float = Field(examples=[0.5])
    acceleration_z: float = Field(examples=[-9.81])
    repetitions: int = Field(examples=[10])
    series_time: float = Field(examples=[30.5])
    rest_time: float = Field(examples=[60.0])
    asymmetry: float | None = None


@router.post(
    "/auth/login",
    responses=error_responses(400, 401, 413, 415, 422, 429, 503),
    openapi_extra=json_body_doc(LoginRequest),
    summary="Log a device in: a token for POST /data",
)
async def login(request: Request, services: ServicesDep) -> dict[str, Any]:
    """`{"device_id", "password"}` → `{"token", "expires_in"}` (seconds). Past the login budgets (per address, per
    device) 429; 503 when too many password checks are already waiting."""
    body = await read_model(request, services.settings, LoginRequest)
    client = request.client.host if request.client else "unknown"
    token = await services.login.login(body.device_id, body.password, client)
    return {"token": token, "expires_in": services.login.lifetime_s}


@router.post(
    "/data",
    responses=error_responses(400, 401, 403, 413, 415, 422, 429, 503),
    openapi_extra=json_body_doc(SensorData),
    summary="Send sensor data with a login token",
)
@router.post("/data/", include_in_schema=False)
async def receive_data(
    request: Request,
    services: ServicesDep,
    token: Annotated[str | None, Header(description="The token of POST /auth/login.")] = None,
    authorization: Annotated[str | None, Header(description="Or `Bearer <token>`.")] = None,
) -> dict[str, Any]:
    """Store the sensor object as the token's device's telemetry; 200 once committed."""
    if token is None and authorization is not None and authorization[: len(BEARER)].lower() == BEARER:
        token = authorization[len(BEARER) :].strip()
    device = await services.login.authenticate(token)
    await enforce_rate_limit(request, services, "device", tenant_id=device.tenant_id, device_pk=device.pk)
    body = await read_model(request, services.settings, SensorData)
    await services.telemetry.accept(device, body.model_dump(mode="json", exclude_none=True), source="http")
    return {"message": DATA_STORED_MESSAGE, "device": device.id}
