import math
import statistics
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetra.domain.calendar import DAY, iter_buckets, parse_interval
from telemetra.domain.rollup import Aggregate, is_number, merge_into_buckets, rollup_buckets, rollup_days, rollup_hours

UTC = timezone.utc
PARIS = ZoneInfo("Europe/Paris")
KOLKATA = ZoneInfo("Asia/Kolkata")
PROPERTY = settings(max_examples=200, deadline=None, database=None)
T0 = datetime(2026, 5, 4, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_worked_example() -> None:
    values = [2, 4, 4, 4, 5, 5, 7, 9]
    agg = Aggregate.from_values((at(i), v) for i, v in enumerate(values))
    assert (agg.count, agg.sum, agg.sum_sq, agg.min, agg.max) == (8, 40.0, 232.0, 2.0, 9.0)
    assert agg.mean == 5.0
    assert agg.stddev == 2.0
    assert agg.first == (at(0), 2.0) and agg.last == (at(7), 9.0)


def test_first_and_last_are_by_time_not_by_order() -> None:
    agg = Aggregate.from_values([(at(5), 1.0), (at(1), 7.0), (at(9), 3.0), (at(2), 0.5)])
    assert agg.first == (at(1), 7.0)
    assert agg.last == (at(9), 3.0)
    grown = agg.add(at(0), 10.0).add(at(20), -1.0)
    assert grown.first == (at(0), 10.0) and grown.last == (at(20), -1.0)
    assert (grown.count, grown.min, grown.max) == (6, -1.0, 10.0)
    assert agg.count == 4  # aggregates are values: add returned a new one


def test_equal_times_break_ties_by_value_whatever_the_order() -> None:
    forward = Aggregate.of(at(0), 1.0).add(at(0), 5.0)
    backward = Aggregate.of(at(0), 5.0).add(at(0), 1.0)
    assert forward == backward
    assert forward.first == (at(0), 1.0) and forward.last == (at(0), 5.0)


def test_times_are_kept_in_utc() -> None:
    agg = Aggregate.of(datetime(2026, 5, 4, 9, tzinfo=PARIS), 3)
    assert agg.first_ts.tzinfo is UTC and agg.first_ts == datetime(2026, 5, 4, 7, tzinfo=UTC)
    assert agg.first_value == 3.0 and isinstance(agg.first_value, float)


def test_to_stats() -> None:
    agg = Aggregate.from_values([(at(0), 10.0), (at(30), 20.0)])
    assert agg.to_stats() == {
        "count": 2,
        "average": 15.0,
        "min": 10.0,
        "max": 20.0,
        "stddev": 5.0,
        "first": {"timestamp": "2026-05-04T00:00:00+00:00", "value": 10.0},
        "last": {"timestamp": "2026-05-04T00:30:00+00:00", "value": 20.0},
    }
    assert agg.to_stats(PARIS)["last"]["timestamp"] == "2026-05-04T02:30:00+02:00"


@pytest.mark.parametrize("value", [True, "12", None, float("nan"), float("inf"), [1]])
def test_only_finite_numbers_are_aggregated(value) -> None:
    assert not is_number(value)
    with pytest.raises(ValueError):
        Aggregate.of(at(0), value)


def test_an_aggregate_is_never_empty_and_needs_aware_times() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Aggregate.from_values([])
    with pytest.raises(ValueError, match="aware"):
        Aggregate.of(datetime(2026, 1, 1), 1.0)


def test_stddev_is_zero_for_equal_values_and_never_nan() -> None:
    same = Aggregate.from_values([(at(i), 1e9 + 0.1) for i in range(7)])
    assert same.stddev == 0.0
    # Sums as rounding may leave them: sum_sq/n a hair below mean², a variance a hair below zero.
    rounded = Aggregate(
        count=3,
        sum=3.3,
        sum_sq=3.6299999999999986,
        min=1.0999999,
        max=1.1000001,
        first_ts=at(0),
        first_value=1.1,
        last_ts=at(2),
        last_value=1.1,
    )
    assert 3.6299999999999986 / 3 - (3.3 / 3) ** 2 < 0
    assert rounded.variance == 0.0 and rounded.stddev == 0.0
    assert rounded.min <= rounded.mean <= rounded.max


def test_stddev_with_a_large_mean() -> None:
    values = [1000.0, 1001.0, 1002.0]
    agg = Aggregate.from_values((at(i), v) for i, v in enumerate(values))
    assert agg.stddev == pytest.approx(statistics.pstdev(values), rel=1e-9)


def test_rollup_hours_groups_by_device_key_and_utc_hour() -> None:
    points = [
        (1, "temp", at(5), 20.0),
        (1, "temp", at(50), 22.0),
        (1, "temp", at(65), 30.0),
        (1, "hum", at(10), 40.0),
        (2, "temp", at(10), 18.0),
        (1, "temp", at(20), "n/a"),
        (1, "door", at(20), True),
        (1, "temp", at(30), None),
    ]
    rollups = rollup_hours(points)
    assert set(rollups) == {(1, "temp", T0), (1, "temp", T0 + timedelta(hours=1)), (1, "hum", T0), (2, "temp", T0)}
    assert rollups[(1, "temp", T0)] == Aggregate.from_values([(at(5), 20.0), (at(50), 22.0)])
    assert rollups[(1, "temp", T0 + timedelta(hours=1))].count == 1


def test_rollup_days_in_a_zone() -> None:
    points = [
        (7, "p", datetime(2026, 10, 24, 21, 30, tzinfo=UTC), 1.0),  # 23:30 on the 24th in Paris
        (7, "p", datetime(2026, 10, 24, 22, 30, tzinfo=UTC), 2.0),  # 00:30 on the 25th
        (7, "p", datetime(2026, 10, 25, 22, 30, tzinfo=UTC), 3.0),
    ]  # 23:30 on the 25th (CET)
    days = rollup_days(points, PARIS)
    assert {k: v.count for k, v in days.items()} == {(7, "p", date(2026, 10, 24)): 1, (7, "p", date(2026, 10, 25)): 2}
    assert days[(7, "p", date(2026, 10, 25))].sum == 5.0
    assert set(rollup_days(points, UTC)) == {(7, "p", date(2026, 10, 24)), (7, "p", date(2026, 10, 25))}
    assert rollup_days(points, UTC)[(7, "p", date(2026, 10, 24))].count == 2


def test_rollup_buckets_from_raw_points() -> None:
    points = [(1, "v", at(m), float(m)) for m in (0, 14, 15, 44, 45)]
    buckets = rollup_buckets(points, parse_interval("15m"), UTC)
    assert {k[2]: v.count for k, v in buckets.items()} == {at(0): 2, at(15): 1, at(30): 1, at(45): 1}
    in_kolkata = rollup_buckets([(1, "v", datetime(2026, 7, 1, 0, 10, tzinfo=UTC), 1.0)], parse_interval("1h"), KOLKATA)
    assert list(in_kolkata) == [(1, "v", datetime(2026, 6, 30, 23, 30, tzinfo=UTC))]


def test_days_composed_from_hourly_rollups_equal_days_from_raw_points() -> None:
    points = [
        (1, "t", datetime(2026, 10, 24, 12, tzinfo=UTC) + timedelta(minutes=37 * i), float(i % 11)) for i in range(200)
    ]
    hourly = {hour: agg for (_, _, hour), agg in rollup_hours(points).items()}
    start, end = datetime(2026, 10, 24, tzinfo=PARIS), datetime(2026, 10, 30, tzinfo=PARIS)
    days = list(iter_buckets(start, end, DAY, PARIS))
    composed = merge_into_buckets(hourly, days)
    direct = rollup_days(points, PARIS)
    assert len(composed) == len(direct) == 6
    for day_start, agg in composed.items():
        raw = direct[(1, "t", day_start.astimezone(PARIS).date())]
        assert (agg.count, agg.min, agg.max, agg.first, agg.last) == (raw.count, raw.min, raw.max, raw.first, raw.last)
        assert agg.sum == pytest.approx(raw.sum) and agg.stddev == pytest.approx(raw.stddev)
    kolkata_days = list(iter_buckets(start, end, DAY, KOLKATA))
    with pytest.raises(ValueError, match="straddles"):
        merge_into_buckets(hourly, kolkata_days)


# Property tests.
value_strategy = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
sample_strategy = st.tuples(st.integers(0, 10_000).map(lambda s: T0 + timedelta(seconds=s)), value_strategy)
samples_strategy = st.lists(sample_strategy, min_size=1, max_size=20)


def assert_same(left: Aggregate, right: Aggregate) -> None:
    """Equal but for the rounding of the sums, which depends on the order of the additions."""
    assert (left.count, left.min, left.max, left.first, left.last) == (
        right.count,
        right.min,
        right.max,
        right.first,
        right.last,
    )
    scale = left.count * max(abs(left.min), abs(left.max), 1.0)
    assert left.sum == pytest.approx(right.sum, rel=1e-12, abs=1e-12 * scale)
    assert left.sum_sq == pytest.approx(right.sum_sq, rel=1e-12, abs=1e-12 * scale * scale)


@PROPERTY
@given(a=samples_strategy, b=samples_strategy, c=samples_strategy)
def test_merge_is_associative_commutative_and_equals_from_values(a, b, c) -> None:
    x, y, z = (Aggregate.from_values(s) for s in (a, b, c))
    assert_same(x.merge(y).merge(z), x.merge(y.merge(z)))
    assert_same(x.merge(y), y.merge(x))
    assert_same(x.merge(y).merge(z), Aggregate.from_values(a + b + c))
    one_by_one = Aggregate.of(*a[0])
    for ts, value in a[1:]:
        one_by_one = one_by_one.add(ts, value)
    assert_same(one_by_one, x)


@PROPERTY
@given(samples=samples_strategy)
def test_statistics_match_the_standard_library(samples) -> None:
    values = [value for _, value in samples]
    agg = Aggregate.from_values(samples)
    assert agg.mean == pytest.approx(statistics.fmean(values), rel=1e-9, abs=1e-9)
    # The sum of squares form is exact up to about eps * mean(x²) on the variance.
    mean_sq = math.fsum(v * v for v in values) / len(values)
    assert abs(agg.variance - statistics.pvariance(values)) <= 1e-12 * mean_sq + 1e-12
    assert agg.stddev == pytest.approx(statistics.pstdev(values), rel=1e-6, abs=math.sqrt(1e-12 * mean_sq) + 1e-9)
    assert agg.variance >= 0
    assert (agg.min, agg.max, agg.count) == (min(values), max(values), len(values))
