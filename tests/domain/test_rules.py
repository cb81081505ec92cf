"""Rule conditions and the window statistics a z-score needs (pure code)."""

from __future__ import annotations

import math
import statistics
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from telemetra.domain.rules import SeriesWindow, fires, parse_definition, value_test

T0 = datetime(2026, 11, 29, tzinfo=timezone.utc)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1, max_size=300),
       size=st.integers(min_value=3, max_value=50))
def test_running_statistics_equal_those_of_the_values_held(values: list[float], size: int) -> None:
    window = SeriesWindow(size=size)
    for i, value in enumerate(values):
        window.push(T0 + timedelta(seconds=i), value)
    held = values[-size:]
    n, mean, std = window.stats()
    assert n == len(held)
    assert math.isclose(mean, statistics.fmean(held), rel_tol=1e-9, abs_tol=1e-6)
    assert math.isclose(std, statistics.pstdev(held), rel_tol=1e-6, abs_tol=1e-4)


def test_a_flat_window_has_no_spread_even_after_many_values() -> None:
    window = SeriesWindow(size=20)
    for i in range(5000):
        window.push(T0 + timedelta(seconds=i), 0.1 * (i % 3) if i < 2500 else 20.3)
    assert window.stats()[2] == 0.0  # so a z-score rule stays quiet rather than divide by rounding noise


def test_a_time_window_keeps_only_its_span() -> None:
    window = SeriesWindow(span=timedelta(seconds=10))
    for i in range(30):
        window.push(T0 + timedelta(seconds=i), float(i))
    assert window.stats()[:2] == (11, 24.0)  # 19..29


def test_value_tests_agree_with_fires() -> None:
    for op in (">", ">=", "<", "<=", "==", "!="):
        definition = parse_definition({"key": "t", "condition": {"type": "threshold", "op": op, "value": 30}})
        test = value_test(definition)
        for value in (29.0, 30.0, 31.0):
            assert test(value) == fires(definition, T0, value, None), (op, value)
    band = parse_definition({"key": "t", "condition": {"type": "range", "low": 1, "high": 3}})
    assert [value_test(band)(v) for v in (0.5, 1.0, 2.0, 3.0, 3.5)] == [True, False, False, False, True]
    assert value_test(parse_definition({"key": "t", "condition": {"type": "rate", "max_per_s": 1}})) is None
