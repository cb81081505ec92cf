"""Alert rule definitions: which devices and key a rule watches, its condition and clear condition, its
JSON form. Pure: no I/O.

A definition comes from JSON (``parse_definition``, which names what is wrong) and goes back to it
(``definition_json``); how a definition is evaluated on points is ``domain.rule_evaluation``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

__all__ = [
    "SEVERITIES",
    "OPS",
    "MAX_WINDOW",
    "MIN_ZSCORE_SAMPLES",
    "Selector",
    "Threshold",
    "Range",
    "ZScore",
    "Rate",
    "NoData",
    "Offline",
    "Condition",
    "RuleDefinition",
    "parse_definition",
    "definition_json",
]

SEVERITIES = ("critical", "major", "minor", "warning", "info")
Op = Literal[">", ">=", "<", "<=", "==", "!="]
MAX_WINDOW = 10_000  # values a z-score window may hold: memory per (rule, device) stays bounded
MIN_ZSCORE_SAMPLES = 3
OPS: dict[str, Callable[[float, float], bool]] = {
    ">": lambda v, x: v > x,
    ">=": lambda v, x: v >= x,
    "<": lambda v, x: v < x,
    "<=": lambda v, x: v <= x,
    "==": lambda v, x: v == x,
    "!=": lambda v, x: v != x,
}


@dataclass(frozen=True, slots=True)
class Selector:
    """All the tenant's devices, a list of ids, or a device type."""

    device_ids: tuple[str, ...] = ()
    device_type: str | None = None

    @property
    def selects_all(self) -> bool:
        return not self.device_ids and self.device_type is None

    def matches(self, device_id: str, device_type: str) -> bool:
        if self.device_ids:
            return device_id in self.device_ids
        if self.device_type is not None:
            return device_type == self.device_type
        return True


@dataclass(frozen=True, slots=True)
class Threshold:
    op: Op
    value: float
    type: str = "threshold"


@dataclass(frozen=True, slots=True)
class Range:
    """Fires outside [low, high]."""

    low: float
    high: float
    type: str = "range"


@dataclass(frozen=True, slots=True)
class ZScore:
    """Fires when the value is more than ``k`` standard deviations from the mean of the device's previous
    ``window`` values (or of those within ``window_s`` seconds), the current value excluded."""

    k: float
    window: int | None = None
    window_s: float | None = None
    type: str = "zscore"


@dataclass(frozen=True, slots=True)
class Rate:
    """Fires when the value changes faster than ``max_per_s`` (either way) since the previous value."""

    max_per_s: float
    type: str = "rate"


@dataclass(frozen=True, slots=True)
class NoData:
    """Fires when the device has sent no data for ``seconds`` (a device never heard of counts too)."""

    seconds: float
    type: str = "no_data"


@dataclass(frozen=True, slots=True)
class Offline:
    """Fires when the device goes offline (its MQTT last will, or silence past its ``offline_after_s``), and
    clears when it is back: driven by the online status, not by points."""

    type: str = "offline"


Condition = Threshold | Range | ZScore | Rate | NoData | Offline


@dataclass(frozen=True, slots=True)
class RuleDefinition:
    key: str | None
    condition: Condition
    severity: str = "warning"
    selector: Selector = field(default_factory=Selector)
    clear: Threshold | Range | None = None
    channels: tuple[int, ...] = ()

    @property
    def on_silence(self) -> bool:
        return isinstance(self.condition, NoData)

    @property
    def on_presence(self) -> bool:
        return isinstance(self.condition, Offline)


# -- JSON (the API validates shapes with pydantic; stored definitions come back through here) ---------
def parse_definition(doc: dict[str, Any]) -> RuleDefinition:
    """Build a definition from its JSON form; ValueError naming what is wrong."""
    condition = _condition(doc.get("condition") or {})
    key = doc.get("key")
    if not isinstance(condition, (NoData, Offline)) and not key:
        raise ValueError("a rule on values needs a 'key'")
    severity = doc.get("severity", "warning")
    if severity not in SEVERITIES:
        raise ValueError(f"severity is one of {', '.join(SEVERITIES)}")
    selector_doc = doc.get("selector") or {}
    selector = Selector(
        device_ids=tuple(selector_doc.get("device_ids") or ()), device_type=selector_doc.get("device_type")
    )
    clear = _condition(doc["clear"]) if doc.get("clear") else None
    if clear is not None and not isinstance(clear, (Threshold, Range)):
        raise ValueError("a clear condition is a threshold or a range")
    return RuleDefinition(
        key=key,
        condition=condition,
        severity=severity,
        selector=selector,
        clear=clear,
        channels=tuple(int(c) for c in doc.get("channels") or ()),
    )


def _condition(doc: dict[str, Any]) -> Condition:
    kind = doc.get("type")
    try:
        if kind == "threshold":
            if doc["op"] not in OPS:
                raise ValueError(f"op is one of {' '.join(OPS)}")
            return Threshold(op=doc["op"], value=_finite(doc["value"]))
        if kind == "range":
            low, high = _finite(doc["low"]), _finite(doc["high"])
            if low > high:
                raise ValueError("low must not exceed high")
            return Range(low=low, high=high)
        if kind == "zscore":
            window, window_s = doc.get("window"), doc.get("window_s")
            if (window is None) == (window_s is None):
                raise ValueError("a z-score needs a 'window' (values) or a 'window_s' (seconds), one of them")
            if window is not None and not (MIN_ZSCORE_SAMPLES <= int(window) <= MAX_WINDOW):
                raise ValueError(f"window is {MIN_ZSCORE_SAMPLES} to {MAX_WINDOW} values")
            if window_s is not None and not (0 < float(window_s) <= 30 * 86400):
                raise ValueError("window_s is a positive number of seconds, at most 30 days")
            k = _finite(doc["k"])
            if k <= 0:
                raise ValueError("k must be positive")
            return ZScore(
                k=k,
                window=int(window) if window is not None else None,
                window_s=float(window_s) if window_s is not None else None,
            )
        if kind == "rate":
            bound = _finite(doc["max_per_s"])
            if bound < 0:
                raise ValueError("max_per_s must not be negative")
            return Rate(max_per_s=bound)
        if kind == "no_data":
            seconds = _finite(doc["seconds"])
            if seconds <= 0:
                raise ValueError("seconds must be positive")
            return NoData(seconds=seconds)
        if kind == "offline":
            return Offline()
    except KeyError as exc:
        raise ValueError(f"a {kind} condition needs '{exc.args[0]}'") from None
    raise ValueError("condition.type is one of threshold, range, zscore, rate, no_data, offline")


def _finite(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    return float(value)


def definition_json(definition: RuleDefinition) -> dict[str, Any]:
    def cond(c: Condition | None) -> dict[str, Any] | None:
        if c is None:
            return None
        body = {name: getattr(c, name) for name in c.__slots__ if getattr(c, name) is not None}
        return {"type": body.pop("type"), **body}

    selector = definition.selector
    return {
        "key": definition.key,
        "condition": cond(definition.condition),
        "clear": cond(definition.clear),
        "severity": definition.severity,
        "channels": list(definition.channels),
        "selector": {"device_ids": list(selector.device_ids), "device_type": selector.device_type},
    }
