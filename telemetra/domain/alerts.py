"""Records of the alerting side: rules, channels, alerts, the outbox and its delivery attempts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from telemetra.domain.rules import RuleDefinition, definition_json
from telemetra.domain.timeparse import isoformat

__all__ = [
    "Rule",
    "Channel",
    "Alert",
    "AlertChange",
    "OutboxItem",
    "Delivery",
    "alert_json",
    "rule_json",
    "channel_json",
    "delivery_json",
    "notification_payload",
    "SECRET_FIELDS",
    "SECRET_MASK",
]

AlertStatus = Literal["active", "acknowledged", "cleared"]


@dataclass(frozen=True, slots=True)
class Rule:
    id: int
    tenant_id: int
    name: str
    definition: RuleDefinition
    enabled: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Channel:
    id: int
    tenant_id: int
    name: str
    kind: Literal["webhook", "email"]
    config: dict[str, Any] = field(repr=False)  # holds the webhook secret or the SMTP password
    enabled: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    tenant_id: int
    rule_id: int
    device_pk: int
    device_id: str
    rule_name: str
    key: str
    severity: str
    status: AlertStatus
    count: int
    first_value: float | None
    last_value: float | None
    first_ts: datetime
    last_ts: datetime
    message: str
    created_at: datetime
    acknowledged_at: datetime | None
    cleared_at: datetime | None
    device_name: str = ""


@dataclass(frozen=True, slots=True)
class AlertChange:
    """What a batch (or the silence timer) does to the open alert of one (rule, device)."""

    kind: Literal["raise", "bump", "clear"]
    rule: Rule
    device_pk: int
    device_id: str
    ts: datetime
    value: float | None
    count: int = 1  # firing points this change stands for
    message: str = ""


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    tenant_id: int
    channel_id: int
    alert_id: int | None
    event: str
    payload: dict[str, Any]
    idempotency_key: str
    attempts: int


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    outbox_id: int
    attempt: int
    at: datetime
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: float
    event: str
    idempotency_key: str


def rule_json(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "enabled": rule.enabled,
        **definition_json(rule.definition),
        "created_at": isoformat(rule.created_at),
        "updated_at": isoformat(rule.updated_at),
    }


def alert_json(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "rule_id": alert.rule_id,
        "rule": alert.rule_name,
        "device_id": alert.device_id,
        "device_name": alert.device_name,
        "key": alert.key,
        "severity": alert.severity,
        "status": alert.status,
        "count": alert.count,
        "first_value": alert.first_value,
        "last_value": alert.last_value,
        "first_ts": isoformat(alert.first_ts),
        "last_ts": isoformat(alert.last_ts),
        "message": alert.message,
        "created_at": isoformat(alert.created_at),
        "acknowledged_at": isoformat(alert.acknowledged_at),
        "cleared_at": isoformat(alert.cleared_at),
    }


SECRET_FIELDS = ("secret", "password")
SECRET_MASK = "********"  # what a secret reads as once it was shown


def channel_json(channel: Channel) -> dict[str, Any]:
    """A channel as shown to its tenant: secrets masked (they were shown once, at creation)."""
    config = {k: (SECRET_MASK if k in SECRET_FIELDS and v else v) for k, v in channel.config.items()}
    return {
        "id": channel.id,
        "name": channel.name,
        "kind": channel.kind,
        "config": config,
        "enabled": channel.enabled,
        "created_at": isoformat(channel.created_at),
    }


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "outbox_id": delivery.outbox_id,
        "event": delivery.event,
        "idempotency_key": delivery.idempotency_key,
        "attempt": delivery.attempt,
        "at": isoformat(delivery.at),
        "ok": delivery.ok,
        "status_code": delivery.status_code,
        "error": delivery.error,
        "duration_ms": round(delivery.duration_ms, 1),
    }


def notification_payload(event: str, alert: Alert) -> dict[str, Any]:
    """The JSON a channel receives: what happened, and the alert as it stands."""
    return {"event": event, "tenant_id": alert.tenant_id, "alert": alert_json(alert)}
