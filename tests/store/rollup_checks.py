"""Checks shared by the rollup tests: two sets of hourly statistics are the same."""

from __future__ import annotations

import pytest


def assert_same_stats(found: dict, truth: dict) -> None:
    """Same groups, and per group the same count, min, max, first and last; sums equal up to rounding."""
    assert found.keys() == truth.keys()
    for group, agg in found.items():
        other = truth[group]
        assert (agg.count, agg.min, agg.max, agg.first, agg.last) == (
            other.count,
            other.min,
            other.max,
            other.first,
            other.last,
        ), group
        assert agg.sum == pytest.approx(other.sum) and agg.sum_sq == pytest.approx(other.sum_sq), group
