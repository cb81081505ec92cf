"""Request shapes of the alerting API: rules and channels (documented in the OpenAPI schema with examples)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RuleIn", "ChannelIn", "RULE_EXAMPLE", "CHANNEL_EXAMPLES"]


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


ConditionIn = Annotated[ThresholdIn | RangeIn | ZScoreIn | RateIn | NoDataIn, Field(discriminator="type")]
ClearIn = Annotated[ThresholdIn | RangeIn, Field(discriminator="type")]


class SelectorIn(_Strict):
    device_ids: list[str] = Field(default_factory=list, max_length=10_000,
                                  description="These devices only (empty: see device_type).")
    device_type: str | None = Field(None, max_length=100, description="Devices of this type (none: all devices).")


RULE_EXAMPLE = {"name": "boiler too hot", "key": "temperature", "severity": "major",
                "condition": {"type": "threshold", "op": ">", "value": 80},
                "clear": {"type": "threshold", "op": "<", "value": 75},
                "selector": {"device_type": "boiler"}, "channels": [1]}


class RuleIn(_Strict):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"examples": [RULE_EXAMPLE]})

    name: str = Field(min_length=1, max_length=100)
    key: str | None = Field(None, min_length=1, max_length=128, description="The watched key (not for no_data).")
    condition: ConditionIn
    clear: ClearIn | None = Field(None, description="When an open alert clears (hysteresis); default: as soon "
                                                    "as a point no longer fires.")
    severity: Literal["critical", "major", "minor", "warning", "info"] = "warning"
    selector: SelectorIn = Field(default_factory=SelectorIn)
    channels: list[int] = Field(default_factory=list, max_length=20, description="Channel ids to notify.")
    enabled: bool = True

    def definition_doc(self) -> dict[str, Any]:
        return self.model_dump(exclude={"name", "enabled"})


CHANNEL_EXAMPLES = [
    {"name": "ops webhook", "kind": "webhook", "config": {"url": "https://example.com/hooks/telemetra",
                                                          "timeout_s": 5}},
    {"name": "ops mail", "kind": "email", "config": {"host": "smtp.example.com", "port": 587, "security": "starttls",
                                                     "username": "alerts", "password": "...",
                                                     "sender": "alerts@example.com",
                                                     "recipients": ["oncall@example.com"]}},
]


class ChannelIn(_Strict):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True,
                              json_schema_extra={"examples": CHANNEL_EXAMPLES})

    name: str = Field(min_length=1, max_length=100)
    kind: Literal["webhook", "email"]
    config: dict[str, Any] = Field(description="webhook: url, secret (generated when absent, shown once), "
                                               "timeout_s; email: host, port, security (starttls, tls, none), "
                                               "username, password, sender, recipients.")
