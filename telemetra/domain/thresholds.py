"""Per-key thresholds (``TELEMETRA_ANOMALY_THRESHOLDS``): the simplest anomaly rule, a value outside a range.

Written ``key=low..high`` with either side optional, comma-separated: ``temperature=-10..35,humidity=..90``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Threshold", "parse_thresholds"]


@dataclass(frozen=True, slots=True)
class Threshold:
    key: str
    low: float | None = None
    high: float | None = None

    def breached(self, value: float) -> bool:
        return (self.low is not None and value < self.low) or (self.high is not None and value > self.high)

    def describe(self) -> str:
        low = "" if self.low is None else f"{self.low:g}"
        high = "" if self.high is None else f"{self.high:g}"
        return f"{low}..{high}"


def _bound(text: str, where: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: '{text}' is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{where}: bounds must be finite")
    return value


def parse_thresholds(text: str) -> dict[str, Threshold]:
    """Parse ``key=low..high,...``; ValueError naming the faulty entry."""
    out: dict[str, Threshold] = {}
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        key, sep, bounds = entry.partition("=")
        low_text, dots, high_text = bounds.partition("..")
        key = key.strip()
        if not sep or not dots or not key:
            raise ValueError(f"'{entry}' is not key=low..high (e.g. temperature=-10..35)")
        low, high = _bound(low_text, key), _bound(high_text, key)
        if low is None and high is None:
            raise ValueError(f"'{entry}' has no bound")
        if low is not None and high is not None and low > high:
            raise ValueError(f"'{entry}': the low bound is above the high one")
        out[key] = Threshold(key, low, high)
    return out
