"""Alert rules: which devices and key they watch, when they fire, when they clear. Pure: no I/O.

A rule fires on a point (threshold, range, z-score, rate of change) or on silence (no data for N seconds,
checked by a timer). An open alert clears when the rule's clear condition holds (hysteresis: fire above
30, clear below 28) or, without one, as soon as a point no longer fires.

The names of both halves, in one place for their callers: definitions and their JSON form are
``domain.rule_definitions``, evaluation on points and the windows it needs ``domain.rule_evaluation``.
"""

from __future__ import annotations

from telemetra.domain.rule_definitions import (
    MAX_WINDOW,
    SEVERITIES,
    Condition,
    NoData,
    Offline,
    Range,
    Rate,
    RuleDefinition,
    Selector,
    Threshold,
    ZScore,
    definition_json,
    parse_definition,
)
from telemetra.domain.rule_evaluation import (
    SeriesWindow,
    clears,
    fires,
    most_sensitive,
    needs_window,
    quiet_prefix,
    span_test,
    value_test,
    window_for,
    window_spec,
)

__all__ = [
    "SEVERITIES",
    "Selector",
    "Threshold",
    "Range",
    "ZScore",
    "Rate",
    "NoData",
    "Offline",
    "Condition",
    "RuleDefinition",
    "SeriesWindow",
    "parse_definition",
    "definition_json",
    "fires",
    "clears",
    "needs_window",
    "value_test",
    "span_test",
    "quiet_prefix",
    "window_spec",
    "most_sensitive",
    "window_for",
    "MAX_WINDOW",
]
