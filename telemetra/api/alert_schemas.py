"""Shapes of the alerting API, requests and answers: rules, alerts, channels, deliveries (in the OpenAPI schema
with examples)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict, JsonValue

from telemetra.api.params import MAX_ID

__all__ = [
    "RuleIn",
    "ChannelIn",
    "RULE_EXAMPLE",
    "CHANNEL_EXAMPLES",
    "RuleAnswer",
    "RuleList",
    "AlertAnswer",
    "AlertList",
    "ChannelCreated",
    "ChannelAnswer",
    "ChannelList",
    "DeliveryList",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ThresholdIn(_Strict):
    type: Literal["threshold"]
    op: Literal[">", ">=", "<", "<=", "==", "!="]
    value: float


class RangeIn(_Strict):
    """Fires outside [low, high]."""

    type: Literal["range"]
    low: float
    high: float


class ZScoreIn(_Strict):
    """More than k standard deviations from the mean of the previous `window` values (or `window_s` seconds)."""

    type: Literal["zscore"]
    k: float = Field(gt=0)
    window: int | None = Field(None, ge=3, le=10_000)
    window_s: float | None = Field(None, gt=0, le=30 * 86400)


class RateIn(_Strict):
    """Changes faster than max_per_s (units per second, either way) since the previous value."""

    type: Literal["rate"]
    max_per_s: float = Field(ge=0)


class NoDataIn(_Strict):
    """Nothing received from the device for `seconds` (checked by a timer; heartbeats are not data)."""

    type: Literal["no_data"]
    seconds: float = Field(gt=0)


class OfflineIn(_Strict):
    """The device went offline (MQTT last will, or silence past its offline_after_s); clears when it is back."""

    type: Literal["offline"]


ConditionIn = Annotated[ThresholdIn | RangeIn | ZScoreIn | RateIn | NoDataIn | OfflineIn, Field(discriminator="type")]
ClearIn = Annotated[ThresholdIn | RangeIn, Field(discriminator="type")]


class SelectorIn(_Strict):
    """Which of the tenant's devices a rule watches.

    - All devices: no `selector`, or `{}` (`device_ids` empty and no `device_type`): every device of the tenant,
      those registered later included.
    - `device_ids`: exactly these devices. Each must be one of the tenant's devices: an unknown id, or another
      tenant's, is refused with 422 `invalid_rule` naming its path (`selector.device_ids.<i>`). When
      `device_ids` is not empty, `device_type` is not looked at.
    - `device_type` alone: every device of that type (the `device_type` it was registered or updated with),
      those registered later included.
    """

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{}, {"device_ids": ["boiler-12", "boiler-13"]}, {"device_type": "boiler"}]},
    )
    device_ids: list[str] = Field(
        default_factory=list,
        max_length=10_000,
        description="Exactly these devices of the tenant (empty: all devices, or those of `device_type`).",
    )
    device_type: str | None = Field(
        None,
        max_length=100,
        description="Devices of this type, when `device_ids` is empty (none, with no `device_ids`: all devices).",
    )


RULE_EXAMPLE: JsonDict = {
    "name": "boiler too hot",
    "key": "temperature",
    "severity": "major",
    "condition": {"type": "threshold", "op": ">", "value": 80},
    "clear": {"type": "threshold", "op": "<", "value": 75},
    "selector": {"device_type": "boiler"},
    "channels": [1],
}


class RuleIn(_Strict):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"examples": [RULE_EXAMPLE]})

    name: str = Field(min_length=1, max_length=100)
    key: str | None = Field(None, min_length=1, max_length=128, description="The watched key (not for no_data).")
    condition: ConditionIn
    clear: ClearIn | None = Field(
        None, description="When an open alert clears (hysteresis); default: as soon as a point no longer fires."
    )
    severity: Literal["critical", "major", "minor", "warning", "info"] = "warning"
    selector: SelectorIn = Field(
        default_factory=SelectorIn, description="Which devices: all (the default), `device_ids` or `device_type`."
    )
    channels: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(
        default_factory=list, max_length=20, description="Channel ids to notify."
    )
    enabled: bool = True

    def definition_doc(self) -> dict[str, Any]:
        return self.model_dump(exclude={"name", "enabled"})


CHANNEL_EXAMPLES: list[JsonValue] = [
    {
        "name": "ops webhook",
        "kind": "webhook",
        "config": {"url": "https://example.com/hooks/telemetra", "timeout_s": 5},
    },
    {
        "name": "ops mail",
        "kind": "email",
        "config": {
            "host": "smtp.example.com",
            "port": 587,
            "security": "starttls",
            "username": "alerts",
            "password": "...",
            "sender": "alerts@example.com",
            "recipients": ["oncall@example.com"],
        },
    },
]


class ChannelIn(_Strict):
    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, json_schema_extra={"examples": CHANNEL_EXAMPLES}
    )

    name: str = Field(min_length=1, max_length=100)
    kind: Literal["webhook", "email"]
    config: dict[str, Any] = Field(
        description="webhook: url, secret (generated when absent, shown once), "
        "timeout_s; email: host, port (25, 465, 587 or 2525), security "
        "(starttls, tls, none), username, password, sender, recipients, "
        "ca_file (in the operator's CA directory). Hosts must be public "
        "addresses unless the operator allows more "
        "(422 outbound_address_refused)."
    )


# -- answers: documentation of what the routes return (a test validates real answers against them) ------------
class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SelectorOut(_Answer):
    device_ids: list[str]
    device_type: str | None


class RuleOut(_Answer):
    id: int
    name: str
    enabled: bool
    key: str | None
    condition: ConditionIn
    clear: ClearIn | None
    severity: Literal["critical", "major", "minor", "warning", "info"]
    channels: list[int]
    selector: SelectorOut
    created_at: str
    updated_at: str


RULE_OUT_EXAMPLE: JsonDict = {
    "id": 3,
    "name": "boiler too hot",
    "enabled": True,
    "key": "temperature",
    "condition": {"type": "threshold", "op": ">", "value": 80.0},
    "clear": {"type": "threshold", "op": "<", "value": 75.0},
    "severity": "major",
    "channels": [1],
    "selector": {"device_ids": [], "device_type": "boiler"},
    "created_at": "2026-11-29T10:00:00.000000Z",
    "updated_at": "2026-11-29T10:00:00.000000Z",
}


class RuleAnswer(_Answer):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"rule": RULE_OUT_EXAMPLE}]})
    rule: RuleOut


class RuleList(_Answer):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"rules": [RULE_OUT_EXAMPLE]}]})
    rules: list[RuleOut]


class AlertOut(_Answer):
    id: int
    rule_id: int
    rule: str
    device_id: str
    device_name: str = Field(description="The device's name when the alert was last read or notified.")
    key: str | None
    severity: Literal["critical", "major", "minor", "warning", "info"]
    status: Literal["active", "acknowledged", "cleared"]
    count: int = Field(description="Firing points (or no-data checks) since the alert was raised.")
    first_value: float | None
    last_value: float | None
    first_ts: str
    last_ts: str
    message: str
    created_at: str
    acknowledged_at: str | None
    cleared_at: str | None


ALERT_OUT_EXAMPLE: JsonDict = {
    "id": 7,
    "rule_id": 3,
    "rule": "boiler too hot",
    "device_id": "boiler-12",
    "device_name": "Boiler 12, cellar",
    "key": "temperature",
    "severity": "major",
    "status": "active",
    "count": 4,
    "first_value": 81.5,
    "last_value": 84.0,
    "first_ts": "2026-11-29T10:01:00.000000Z",
    "last_ts": "2026-11-29T10:04:00.000000Z",
    "message": "boiler-12: temperature = 81.5 (> 80, rule 'boiler too hot')",
    "created_at": "2026-11-29T10:01:00.020000Z",
    "acknowledged_at": None,
    "cleared_at": None,
}


class PaginationOut(_Answer):
    page: int
    per_page: int
    total: int
    pages: int
    has_next: bool
    has_prev: bool


class AlertAnswer(_Answer):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"alert": ALERT_OUT_EXAMPLE}]})
    alert: AlertOut


class AlertList(_Answer):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "alerts": [ALERT_OUT_EXAMPLE],
                    "pagination": {
                        "page": 1,
                        "per_page": 50,
                        "total": 1,
                        "pages": 1,
                        "has_next": False,
                        "has_prev": False,
                    },
                }
            ]
        },
    )
    alerts: list[AlertOut]
    pagination: PaginationOut


class ChannelOut(_Answer):
    id: int
    name: str
    kind: Literal["webhook", "email"]
    config: dict[str, Any] = Field(description="As configured, with `secret` and `password` masked.")
    enabled: bool
    created_at: str


CHANNEL_OUT_EXAMPLE: JsonDict = {
    "id": 1,
    "name": "ops webhook",
    "kind": "webhook",
    "config": {"url": "https://example.com/hooks/telemetra", "secret": "********", "timeout_s": 5},
    "enabled": True,
    "created_at": "2026-11-29T09:00:00.000000Z",
}


class ChannelCreated(_Answer):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"channel": CHANNEL_OUT_EXAMPLE, "secret": "whsec_3q2+7Yk..."}]}
    )
    channel: ChannelOut
    secret: str | None = Field(
        None, description="A webhook's signing secret, generated when none was given; shown in this answer only."
    )


class ChannelAnswer(_Answer):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"channel": CHANNEL_OUT_EXAMPLE}]})
    channel: ChannelOut


class ChannelList(_Answer):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"channels": [CHANNEL_OUT_EXAMPLE]}]})
    channels: list[ChannelOut]


class DeliveryOut(_Answer):
    id: int
    outbox_id: int
    event: Literal["alert.raised", "alert.cleared", "channel.test"] = Field(
        description="`channel.test`: a test sent with `POST /api/v1/channels/{id}/test`."
    )
    idempotency_key: str
    attempt: int
    at: str
    ok: bool
    status_code: int | None = Field(
        description="The receiver's answer: its HTTP status for a webhook, the SMTP server's reply code for "
        "an e-mail (250 when it took the message, its 4xx/5xx reply when it refused it); none when no answer "
        "came (a connection or TLS failure, a timeout, an address refused)."
    )
    error: str | None
    duration_ms: float


class DeliveryList(_Answer):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "deliveries": [
                        {
                            "id": 12,
                            "outbox_id": 9,
                            "event": "alert.raised",
                            "idempotency_key": "alert-7-alert.raised-channel-1",
                            "attempt": 2,
                            "at": "2026-11-29T10:01:05.300000Z",
                            "ok": True,
                            "status_code": 204,
                            "error": None,
                            "duration_ms": 41.7,
                        },
                        {
                            "id": 11,
                            "outbox_id": 9,
                            "event": "alert.raised",
                            "idempotency_key": "alert-7-alert.raised-channel-1",
                            "attempt": 1,
                            "at": "2026-11-29T10:01:00.100000Z",
                            "ok": False,
                            "status_code": 503,
                            "error": "HTTP 503: upstream unavailable",
                            "duration_ms": 12.0,
                        },
                    ]
                }
            ]
        },
    )
    deliveries: list[DeliveryOut]
