"""Shapes of answers the core routes build themselves: the ingest batches and /health (documentation only; the
hook of tests/answers.py validates every answer the test suite receives against them)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

__all__ = ["BatchAnswer", "HealthAnswer"]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BatchItemOut(_Answer):
    index: int = Field(description="The message's position in the batch, from 0.")
    status: Literal["accepted", "rejected"]
    device_id: str | None
    telemetry_id: int | None = Field(None, description="Accepted: the stored message's id.")
    duplicate: bool | None = Field(None, description="Accepted: a replay of a `msg_id` already stored.")
    code: str | None = Field(None, description="Rejected: the error code (docs/errors.md).")
    message: str | None = Field(None, description="Rejected: why.")


BATCH_EXAMPLE: JsonDict = {
    "accepted": 1,
    "rejected": 1,
    "results": [
        {"index": 0, "status": "accepted", "device_id": "boiler-1", "telemetry_id": 812, "duplicate": False},
        {
            "index": 1,
            "status": "rejected",
            "device_id": "meter-7",
            "code": "device_not_found",
            "message": "No device 'meter-7' in your tenant.",
        },
    ],
}


class BatchAnswer(_Answer):
    """Each message's fate, by index: 200 when every one was accepted, 207 when some were."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [BATCH_EXAMPLE]})
    accepted: int
    rejected: int
    results: list[BatchItemOut]


class DatabaseHealth(_Answer):
    backend: Literal["sqlite", "postgres"]
    reachable: bool
    latency_ms: float | None = Field(None, description="The ping's round trip; absent when unreachable.")


class HealthAnswer(_Answer):
    """200 while the database answers; 503 (with Retry-After) while it does not."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "status": "healthy",
                    "version": "0.1.0",
                    "uptime_s": 3600.5,
                    "database": {"backend": "sqlite", "reachable": True, "latency_ms": 0.4},
                }
            ]
        },
    )
    status: Literal["healthy", "unhealthy"]
    version: str
    uptime_s: float
    database: DatabaseHealth
