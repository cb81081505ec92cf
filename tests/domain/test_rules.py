"""Rule conditions and the window statistics a z-score needs (pure code)."""

from __future__ import annotations

import math
import statistics
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from telemetra.domain.rules import (
    SeriesWindow,
    fires,
    parse_definition,
    quiet_prefix,
    span_test,
    value_test,
    window_for,
)

T0 = datetime(2026, 11, 29, tzinfo=timezone.utc)


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1, max_size=300),
    size=st.integers(min_value=3, max_value=50),
)
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


_WINDOWED = st.sampled_from(
    [
        {"type": "zscore", "k": 2, "window": 5},
        {"type": "zscore", "k": 1.5, "window_s": 4},
        {"type": "rate", "max_per_s": 3},
    ]
)


@settings(max_examples=200, deadline=None)
@given(_WINDOWED, st.lists(st.tuples(st.integers(0, 3), st.integers(-20, 20)), max_size=40))
def test_quiet_prefix_pushes_exactly_the_points_fires_leaves_quiet(condition: dict, steps: list) -> None:
    """The fast path and the point-by-point path agree on where the first firing point is, and leave the
    window in the same state."""
    definition = parse_definition({"key": "t", "condition": condition})
    ts, series = T0, []
    for gap, value in steps:  # gaps of 0 s too: a rate over no time must not fire
        ts += timedelta(seconds=gap)
        series.append((ts, float(value)))
    fast, slow = window_for(definition), window_for(definition)
    quiet = quiet_prefix(definition)(fast, series)
    expected = 0
    for point_ts, value in series:
        if fires(definition, point_ts, value, slow):
            break
        slow.push(point_ts, value)
        expected += 1
    assert quiet == expected
    assert list(fast.values) == list(slow.values) and fast.previous == slow.previous
    assert fast.stats() == slow.stats()


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(
        [{"type": "threshold", "op": op, "value": 3} for op in (">", ">=", "<", "<=", "==", "!=")]
        + [{"type": "range", "low": -2, "high": 4}]
    ),
    st.lists(st.integers(-6, 8).map(float), min_size=1, max_size=12),
)
def test_span_test_says_whether_any_value_fires(condition: dict, values: list[float]) -> None:
    """Screening a batch by its lowest and highest values is exact where it applies (ordered thresholds,
    ranges) and declines (None) where it cannot be (== and !=)."""
    definition = parse_definition({"key": "t", "condition": condition})
    screen = span_test(definition)
    if condition.get("op") in ("==", "!="):
        assert screen is None
    else:
        assert screen(min(values), max(values)) == any(map(value_test(definition), values))


def test_value_tests_agree_with_fires() -> None:
    for op in (">", ">=", "<", "<=", "==", "!="):
        definition = parse_definition({"key": "t", "condition": {"type": "threshold", "op": op, "value": 30}})
        test = value_test(definition)
        for value in (29.0, 30.0, 31.0):
            assert test(value) == fires(definition, T0, value, None), (op, value)
    band = parse_definition({"key": "t", "condition": {"type": "range", "low": 1, "high": 3}})
    assert [value_test(band)(v) for v in (0.5, 1.0, 2.0, 3.0, 3.5)] == [True, False, False, False, True]
    assert value_test(parse_definition({"key": "t", "condition": {"type": "rate", "max_per_s": 1}})) is None
