"""POST /api/v1/telemetry/batch: many messages for many devices of the caller's tenant."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from telemetra.api.deps import IngestDep, Services, ServicesDep, read_json
from telemetra.api.errors import error_responses
from telemetra.api.responses import JsonResponse
from telemetra.errors import PayloadTooLarge, ValidationFailed
from telemetra.ingest.service import BatchItemResult

router = APIRouter(prefix="/api/v1/telemetry", tags=["telemetry"], responses=error_responses(429))

BATCH_DOC = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "oneOf": [
        {"type": "array", "items": {"type": "object"}},
        {"type": "object", "required": ["messages"],
         "properties": {"messages": {"type": "array", "items": {"type": "object"}}}},
    ]},
    "example": {"messages": [
        {"device_id": "boiler-1", "data": {"temperature": 61.5}, "timestamp": "2026-11-22T10:00:00Z",
         "msg_id": "boiler-1/8812"},
        {"device_id": "meter-7", "ts": 1795341600000, "values": {"instant_power": 2500}},
    ]}}}}}


@router.post("/batch", responses={**error_responses(400, 401, 403, 413, 415, 422, 503),
                                  207: {"description": "Some messages were accepted, some rejected."}},
             openapi_extra=BATCH_DOC, summary="Send many messages for many devices")
async def send_batch(request: Request, services: ServicesDep, principal: IngestDep) -> Any:
    """Each message names its device (`device_id`, or `bizData.devId`) and may be in any known format.

    200: all accepted; 207: some rejected; 422: none accepted. The answer reports every message by index.
    Accepted messages are committed before the answer.
    """
    messages = await read_batch(request, services)
    return batch_answer(await services.telemetry.accept_batch(principal.tenant_id, messages))


async def read_batch(request: Request, services: Services) -> list[Any]:
    """Read a batch body: a JSON array of messages, or ``{"messages": [...]}``, within the batch limits."""
    settings = services.settings
    doc = await read_json(request, settings, max_bytes=settings.batch_max_body_bytes)
    messages = doc.get("messages") if isinstance(doc, dict) else doc
    if not isinstance(messages, list) or not messages:
        raise ValidationFailed("send a non-empty JSON array of messages, or {\"messages\": [...]}",
                               code="invalid_batch")
    if len(messages) > settings.batch_max_messages:
        raise PayloadTooLarge(f"{len(messages)} messages in one batch; at most {settings.batch_max_messages}.")
    return messages


def batch_answer(results: list[BatchItemResult]) -> Any:
    """200 when every message was accepted, 207 when some were, 422 when none; each reported by index."""
    accepted = sum(1 for r in results if r.error is None)
    body = {"accepted": accepted, "rejected": len(results) - accepted, "results": [r.to_json() for r in results]}
    if accepted == len(results):
        return body
    if accepted == 0:
        return JsonResponse({"error": "Unprocessable Entity", "code": "batch_rejected",
                             "message": "No message of the batch was accepted; see details.",
                             "details": body}, status_code=422)
    return JsonResponse(body, status_code=207)
