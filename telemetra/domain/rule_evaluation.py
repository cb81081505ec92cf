"""Alert rule evaluation: when a definition fires on a point, when an open alert clears, and the window of
recent values a rule needs to tell. Pure: no I/O.

A rule fires on a point (threshold, range, z-score, rate of change) or on silence (no data for N seconds,
checked by a timer). An open alert clears when the rule's clear condition holds (hysteresis: fire above
30, clear below 28) or, without one, as soon as a point no longer fires.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Callable

from telemetra.domain.rule_definitions import (
    MAX_WINDOW,
    MIN_ZSCORE_SAMPLES,
    OPS,
    Range,
    Rate,
    RuleDefinition,
    Threshold,
    ZScore,
)

__all__ = [
    "SeriesWindow",
    "fires",
    "clears",
    "needs_window",
    "value_test",
    "span_test",
    "quiet_prefix",
    "window_spec",
    "window_for",
    "most_sensitive",
]

RESUM_EVERY = 1000

_MIRRORED = {">": "__lt__", ">=": "__le__", "<": "__gt__", "<=": "__ge__", "==": "__eq__", "!=": "__ne__"}


@dataclass(slots=True)
class SeriesWindow:
    """The recent values of one device and key, as a rule sees them before the current point.

    The statistics are kept as running sums of the values minus a shift (the first value held), so each
    point costs the same however long the window; the shift keeps the sums small next to the values, and
    they are recomputed exactly every ``RESUM_EVERY`` removals so rounding cannot pile up.
    """

    size: int | None = None
    span: timedelta | None = None
    values: deque[tuple[datetime, float]] = field(default_factory=deque)  # (ts, value), oldest first
    previous: tuple[datetime, float] | None = None
    _shift: float = 0.0
    _sum: float = 0.0
    _sum_sq: float = 0.0
    _removed: int = 0
    _limit: int = field(init=False, default=0)  # values held at most; 0: only the previous point is kept

    def __post_init__(self) -> None:
        if self.size is not None or self.span is not None:
            self._limit = min(self.size or MAX_WINDOW, MAX_WINDOW)

    def push(self, ts: datetime, value: float) -> None:
        self.previous = (ts, value)
        limit = self._limit
        if not limit:
            return
        values = self.values
        if not values:
            self._shift, self._sum, self._sum_sq = value, 0.0, 0.0
        values.append((ts, value))
        d = value - self._shift
        self._sum += d
        self._sum_sq += d * d
        if len(values) > limit:  # one value in, at most one out
            self._drop()
        if self.span is not None:
            oldest = ts - self.span
            while values and values[0][0] < oldest:
                self._drop()

    def push_while_within(self, series: list[tuple[datetime, float]], k: float) -> int:
        """Push the leading points of ``series`` that lie within ``k`` standard deviations of the values
        held before each (what a z-score rule lets through); return how many. The arithmetic of
        ``stats``, ``fires`` and ``push``, inlined: this runs for nearly every point a z-score rule sees."""
        done, values = 0, self.values
        for point in series:
            value = point[1]
            n = len(values)
            if n >= MIN_ZSCORE_SAMPLES:
                mean_d = self._sum / n
                variance = self._sum_sq / n - mean_d * mean_d
                if variance > 1e-12 * max(1.0, self._sum_sq / n) and abs(
                    value - (self._shift + mean_d)
                ) > k * math.sqrt(variance):
                    break
            elif not n:
                self._shift, self._sum, self._sum_sq = value, 0.0, 0.0
            self.previous = point
            values.append(point)
            d = value - self._shift
            self._sum += d
            self._sum_sq += d * d
            if n >= self._limit:  # one value in, at most one out
                self._drop()
            if self.span is not None:
                oldest = point[0] - self.span
                while values and values[0][0] < oldest:
                    self._drop()
            done += 1
        return done

    def push_while_slower(self, series: list[tuple[datetime, float]], max_per_s: float) -> int:
        """Push the leading points of ``series`` whose change since the point before is at most
        ``max_per_s`` per second (what a rate rule lets through); return how many."""
        done, previous = 0, self.previous
        for point in series:
            if previous is not None:
                seconds = (point[0] - previous[0]).total_seconds()
                if seconds > 0 and abs(point[1] - previous[1]) / seconds > max_per_s:
                    break
            previous = point
            done += 1
        if self._limit:
            for ts, value in series[:done]:
                self.push(ts, value)
        else:  # a window that keeps only the previous point, as a rate's does
            self.previous = previous
        return done

    def _drop(self) -> None:
        _, old = self.values.popleft()
        d = old - self._shift
        self._sum -= d
        self._sum_sq -= d * d
        self._removed += 1
        if self._removed >= RESUM_EVERY or not self.values:
            self._resum()

    def _resum(self) -> None:
        self._removed = 0
        self._shift = self.values[0][1] if self.values else 0.0
        self._sum = math.fsum(v - self._shift for _, v in self.values)
        self._sum_sq = math.fsum((v - self._shift) ** 2 for _, v in self.values)

    def stats(self) -> tuple[int, float, float]:
        """(count, mean, population standard deviation) of the values held."""
        n = len(self.values)
        if n == 0:
            return 0, 0.0, 0.0
        mean_d = self._sum / n
        variance = self._sum_sq / n - mean_d * mean_d
        # Rounding leaves a flat series a hair of variance (or a negative one): that is no spread at all.
        if variance <= 1e-12 * max(1.0, self._sum_sq / n):
            variance = 0.0
        return n, self._shift + mean_d, math.sqrt(variance)


def window_spec(definition: RuleDefinition) -> str:
    """What a rule's window holds, as a name: rules on the same key with the same spec see the same window
    (a warning at 3 and a critical at 5 standard deviations over the same 30 values), so a process keeps
    one per device for all of them."""
    condition = definition.condition
    if isinstance(condition, ZScore):
        return f"{definition.key}\x00zscore:{condition.window}:{condition.window_s}"
    return f"{definition.key}\x00previous"  # a rate needs the previous point only


def most_sensitive(definitions: list[RuleDefinition]) -> RuleDefinition:
    """Of rules sharing a window (same ``window_spec``), the one that fires first: a point that leaves it
    quiet leaves them all quiet."""

    def bound(definition: RuleDefinition) -> float:
        condition = definition.condition
        if isinstance(condition, ZScore):
            return condition.k
        assert isinstance(condition, Rate)  # a shared window is a z-score's or a rate's (``needs_window``)
        return condition.max_per_s

    return min(definitions, key=bound)


def window_for(definition: RuleDefinition) -> SeriesWindow:
    condition = definition.condition
    if isinstance(condition, ZScore):
        span = timedelta(seconds=condition.window_s) if condition.window_s else None
        return SeriesWindow(size=condition.window, span=span)
    return SeriesWindow()


def _holds(condition: Threshold | Range, value: float) -> bool:
    if isinstance(condition, Threshold):
        return OPS[condition.op](value, condition.value)
    return value < condition.low or value > condition.high


def value_test(definition: RuleDefinition) -> Callable[[float], bool] | None:
    """For a rule that fires on the value alone (threshold, range), a fast test of one value; else None."""
    condition = definition.condition
    if isinstance(condition, Threshold):
        return _threshold_test(condition)
    if isinstance(condition, Range):
        low, high = condition.low, condition.high
        return lambda value: value < low or value > high
    return None


def _threshold_test(condition: Threshold) -> Callable[[float], bool]:
    # The bound comparison of the threshold itself: `value > 30` is `(30.0).__lt__(value)`.
    test: Callable[[float], bool] = getattr(float(condition.value), _MIRRORED[condition.op])
    return test


def span_test(definition: RuleDefinition) -> Callable[[float, float], bool] | None:
    """For a threshold with an ordering operator or a range, whether any value between the lowest and the
    highest of a set fires, from those two alone; else None. The values are finite (NaN never reaches a
    rule: JSON bodies refuse it)."""
    condition = definition.condition
    if isinstance(condition, Range):
        low, high = condition.low, condition.high
        return lambda lowest, highest: lowest < low or highest > high
    if isinstance(condition, Threshold) and condition.op in (">", ">="):
        test = _threshold_test(condition)
        return lambda lowest, highest: test(highest)
    if isinstance(condition, Threshold) and condition.op in ("<", "<="):
        test = _threshold_test(condition)
        return lambda lowest, highest: test(lowest)
    return None


def needs_window(definition: RuleDefinition) -> bool:
    """Whether the rule looks at earlier points (a z-score or a rate) or at the current one only."""
    return isinstance(definition.condition, (ZScore, Rate))


def fires(definition: RuleDefinition, ts: datetime, value: float, window: SeriesWindow | None) -> bool:
    """Whether the point fires the rule, given the window of earlier points (not yet holding this one);
    ``window`` may be None for a rule that does not need one."""
    condition = definition.condition
    if isinstance(condition, (Threshold, Range)):
        return _holds(condition, value)
    if isinstance(condition, ZScore):
        assert window is not None  # a z-score or a rate is always evaluated with its window
        n, mean, std = window.stats()
        if n < MIN_ZSCORE_SAMPLES or std == 0.0:
            return False  # too little history, or a flat one: no spread to measure against
        return abs(value - mean) > condition.k * std
    if isinstance(condition, Rate):
        assert window is not None  # as above
        if window.previous is None:
            return False
        prev_ts, prev_value = window.previous
        seconds = (ts - prev_ts).total_seconds()
        return seconds > 0 and abs(value - prev_value) / seconds > condition.max_per_s
    return False  # no-data rules fire on silence, not on points


def quiet_prefix(definition: RuleDefinition) -> Callable[[SeriesWindow, list[tuple[datetime, float]]], int] | None:
    """For a z-score or a rate, a function that pushes onto a window the leading points of a series (in time
    order) that do not fire the rule, and returns how many there were; None for other rules. With no alert
    open such points need nothing else: the same decisions as ``fires`` followed by ``window.push``, made
    in one loop for the points that nearly always leave a rule quiet."""
    condition = definition.condition
    if isinstance(condition, ZScore):
        return partial(SeriesWindow.push_while_within, k=condition.k)
    if isinstance(condition, Rate):
        return partial(SeriesWindow.push_while_slower, max_per_s=condition.max_per_s)
    return None


def clears(definition: RuleDefinition, ts: datetime, value: float, window: SeriesWindow | None) -> bool:
    """Whether an open alert of the rule clears on this point."""
    if definition.clear is not None:
        return _holds(definition.clear, value)
    return not fires(definition, ts, value, window)
