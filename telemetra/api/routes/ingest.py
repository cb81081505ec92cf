"""The HTTP ingest routes, the busiest of the API: a device's message, a device's buffer, a tenant's batch.

They are ``DirectRoute``s added to the app itself, ahead of every included router: a request is matched at
the first try and runs no dependency solving. Each handler calls what the dependencies of the other routes
call (``authorize``: key, rate limit, kind; ``read_json``: content type, size, parse), so that they refuse
alike, with the same JSON errors. Their OpenAPI operations are declared as any other route's.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import FastAPI, Request, Security

from telemetra.api.answer_schemas import BatchAnswer, TelemetryAccepted
from telemetra.api.deps import Services, api_key_header, authorize, json_body_doc, read_json
from telemetra.api.direct_route import DirectRoute
from telemetra.api.errors import answer_doc, error_responses
from telemetra.api.responses import JsonResponse
from telemetra.api.schemas import TelemetryIn
from telemetra.domain.timeparse import isoformat
from telemetra.errors import PayloadTooLarge, ValidationFailed
from telemetra.ingest.service import BatchItemResult

__all__ = ["add_ingest_routes", "read_batch", "batch_answer"]

INGEST_ERRORS = (400, 401, 403, 413, 415, 422, 429, 503)
BATCH_ANSWERS: dict[int | str, dict[str, Any]] = {
    **answer_doc(BatchAnswer, 200, "Every message was accepted."),
    **answer_doc(BatchAnswer, 207, "Some messages were accepted, some rejected."),
}
BATCH_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"type": "array", "items": {"type": "object"}},
                        {
                            "type": "object",
                            "required": ["messages"],
                            "properties": {"messages": {"type": "array", "items": {"type": "object"}}},
                        },
                    ]
                },
                "example": {
                    "messages": [
                        {
                            "device_id": "boiler-1",
                            "data": {"temperature": 61.5},
                            "timestamp": "2026-11-22T10:00:00Z",
                            "msg_id": "boiler-1/8812",
                        },
                        {"device_id": "meter-7", "ts": 1795341600000, "values": {"instant_power": 2500}},
                    ]
                },
            }
        },
    }
}


async def submit_telemetry(request: Request) -> JsonResponse:
    """Store one message; the 201 answer means it is committed.

    The body is seed 002's `{"data", "metadata", "type", "timestamp"}` or any other known format (a flat
    object, `{"ts", "values"}`, a device property message). A `msg_id` makes a retry harmless.
    """
    services, principal = await authorize(request, "device")
    services.pipeline.refuse_when_full("http", tenant_id=principal.tenant_id)
    doc = await read_json(request, services.settings)
    message = await services.telemetry.accept(principal.device, doc)
    return JsonResponse(
        {
            "message": "Telemetry data received successfully",
            "telemetry_id": message.id,
            "timestamp": isoformat(message.ts),
            "duplicate": message.duplicate,
        },
        status_code=201,
    )


async def submit_own_batch(request: Request) -> JsonResponse:
    """A device sends messages it buffered while offline, in one request and under the batch rate limit.

    Every message is the device's own (one naming another device is rejected); answers as the tenant batch
    route does: 200 all accepted, 207 some, 422 none.
    """
    services, principal = await authorize(request, "device")
    messages = await read_batch(request, services, principal.tenant_id)
    return batch_answer(await services.telemetry.accept_own_batch(principal.device, messages))


async def send_batch(request: Request) -> JsonResponse:
    """Each message names its device (`device_id`, or `bizData.devId`) and may be in any known format.

    200: all accepted; 207: some rejected; 422: none accepted. The answer reports every message by index.
    Accepted messages are committed before the answer.
    """
    services, principal = await authorize(request, "tenant", full_scope=False)
    messages = await read_batch(request, services, principal.tenant_id)
    return batch_answer(await services.telemetry.accept_batch(principal.tenant_id, messages))


async def read_batch(request: Request, services: Services, tenant_id: int | None = None) -> list[Any]:
    """Read a batch body: a JSON array of messages, or ``{"messages": [...]}``, within the batch limits;
    refused at once (503, or 429 when the tenant holds its share of it) when the ingest queue is full, before
    the body is read."""
    services.pipeline.refuse_when_full("http_batch", tenant_id=tenant_id)
    settings = services.settings
    doc = await read_json(request, settings, max_bytes=settings.batch_max_body_bytes)
    messages = doc.get("messages") if isinstance(doc, dict) else doc
    if not isinstance(messages, list) or not messages:
        raise ValidationFailed('send a non-empty JSON array of messages, or {"messages": [...]}', code="invalid_batch")
    if len(messages) > settings.batch_max_messages:
        raise PayloadTooLarge(f"{len(messages)} messages in one batch; at most {settings.batch_max_messages}.")
    return messages


def batch_answer(results: list[BatchItemResult]) -> JsonResponse:
    """200 when every message was accepted, 207 when some were, 422 when none; each reported by index."""
    accepted = sum(1 for r in results if r.error is None)
    body = {"accepted": accepted, "rejected": len(results) - accepted, "results": [r.to_json() for r in results]}
    if accepted == len(results):
        return JsonResponse(body)
    if accepted == 0:
        return JsonResponse(
            {
                "error": "Unprocessable Entity",
                "code": "batch_rejected",
                "message": "No message of the batch was accepted; see details.",
                "details": body,
            },
            status_code=422,
        )
    return JsonResponse(body, status_code=207)


def add_ingest_routes(app: FastAPI) -> None:
    """Add the ingest routes to the app's own router, as its first routes: a request tries the routes in order,
    and these take nearly every request of a busy server. Call it before including any other router."""
    routes_before = len(app.router.routes)  # the API docs' own (/openapi.json, /docs, ...)
    add = partial(
        app.router.add_api_route,
        methods=["POST"],
        route_class_override=DirectRoute,
        dependencies=[Security(api_key_header)],
    )
    add(
        "/api/v1/devices/telemetry",
        submit_telemetry,
        status_code=201,
        tags=["devices"],
        response_model=None,
        responses={**answer_doc(TelemetryAccepted, 201, "Committed."), **error_responses(*INGEST_ERRORS)},
        openapi_extra=json_body_doc(TelemetryIn),
        summary="Send telemetry",
    )
    add(
        "/api/v1/devices/telemetry/batch",
        submit_own_batch,
        tags=["devices"],
        response_model=None,
        responses={**error_responses(*INGEST_ERRORS), **BATCH_ANSWERS},
        openapi_extra=BATCH_DOC,
        summary="Send many of the device's own messages (a buffer replayed)",
    )
    add(
        "/api/v1/telemetry/batch",
        send_batch,
        tags=["telemetry"],
        response_model=None,
        responses={**error_responses(*INGEST_ERRORS), **BATCH_ANSWERS},
        openapi_extra=BATCH_DOC,
        summary="Send many messages for many devices",
    )
    app.router.routes[:] = app.router.routes[routes_before:] + app.router.routes[:routes_before]
