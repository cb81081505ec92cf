import math
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetra.domain.calendar import DAY, HOUR, hourly_composable, iter_buckets, utc_hours
from telemetra.domain.energy import (
    DEFAULT_MAX_HOLD,
    BucketEnergy,
    affected_hours,
    affected_ranges,
    energy_by_local_hour,
    energy_list,
    integrate,
    integrate_buckets,
    integrate_hours,
    sum_into_buckets,
)

UTC = timezone.utc
PARIS = ZoneInfo("Europe/Paris")
KOLKATA = ZoneInfo("Asia/Kolkata")
PROPERTY = settings(max_examples=200, deadline=None, database=None)
T0 = datetime(2026, 5, 4, tzinfo=UTC)


def at(hours: float = 0, minutes: float = 0) -> datetime:
    return T0 + timedelta(hours=hours, minutes=minutes)


def test_worked_example_splits_at_the_hour() -> None:
    # 1000 W from 00:30 to 01:15, then 0 W: 500 Wh in hour 00 and 250 Wh in hour 01.
    samples = [(at(0, 30), 1000), (at(1, 15), 0)]
    hours = integrate_hours(samples, at(0), at(2))
    assert hours == {at(0): (500.0, 1800.0), at(1): (250.0, 3600.0)}
    assert integrate(samples, at(0), at(2)) == (750.0, 5400.0)


def test_a_value_holds_for_at_most_max_hold() -> None:
    samples = [(at(0), 2000), (at(3), 500)]
    hours = integrate_hours(samples, at(0), at(4))
    assert hours == {at(0): (2000.0, 3600.0), at(1): (0.0, 0.0), at(2): (0.0, 0.0), at(3): (500.0, 3600.0)}
    longer = integrate_hours(samples, at(0), at(4), max_hold=timedelta(minutes=90))
    assert longer[at(1)] == (1000.0, 1800.0)
    assert longer[at(2)] == (0.0, 0.0)
    assert DEFAULT_MAX_HOLD == timedelta(hours=1)


def test_the_last_value_before_start_is_carried_in() -> None:
    samples = [(at(0, 10), 1200)]
    carried = integrate(samples, at(0), at(1), carried_in=(at(-1, 40), 600))
    assert carried == pytest.approx((100.0 + 1000.0, 3600.0))
    too_old = integrate(samples, at(0), at(1), carried_in=(at(-1, -30), 600))  # held until 23:30 only
    assert too_old == pytest.approx((1000.0, 3000.0))
    # Samples before the range may also come in the list itself: only what overlaps the range counts.
    assert integrate([(at(-1, 40), 600), *samples], at(0), at(1)) == carried


def test_a_value_that_is_not_a_number_ends_the_step_and_is_unknown() -> None:
    samples = [(at(0), 1000), (at(0, 30), None), (at(0, 45), float("nan")), (at(0, 50), 600)]
    assert integrate(samples, at(0), at(1)) == pytest.approx((500.0 + 100.0, 1800.0 + 600.0))


def test_the_last_of_samples_at_the_same_time_wins() -> None:
    assert integrate([(at(0), 100), (at(0), 300)], at(0), at(1)) == (300.0, 3600.0)


def test_partial_range_counts_only_inside_it() -> None:
    hours = integrate_hours([(at(-2), 100), (at(0), 1000)], at(0, 15), at(1, 30))
    assert hours == {at(0): (750.0, 2700.0), at(1): (0.0, 0.0)}
    assert integrate([(at(0), 1000)], at(1), at(1)) == (0.0, 0.0)


@pytest.mark.parametrize(
    "samples, error",
    [
        ([(at(1), 1), (at(0), 1)], "sorted"),
        ([(datetime(2026, 5, 4), 1)], "aware"),
    ],
)
def test_bad_samples_are_refused(samples, error) -> None:
    with pytest.raises(ValueError, match=error):
        integrate_hours(samples, at(0), at(2))


def test_carried_in_must_come_first_and_max_hold_be_positive() -> None:
    with pytest.raises(ValueError, match="sorted"):
        integrate([(at(0), 1)], at(0), at(1), carried_in=(at(0, 30), 5))
    with pytest.raises(ValueError, match="positive"):
        integrate([(at(0), 1)], at(0), at(1), max_hold=timedelta(0))


def test_integrate_buckets_over_arbitrary_buckets() -> None:
    buckets = [(at(0), at(0, 20)), (at(0, 20), at(0, 50)), (at(2), at(3))]
    energies = integrate_buckets([(at(0, 10), 600)], buckets)
    assert energies == {at(0): (100.0, 600.0), at(0, 20): (300.0, 1800.0), at(2): (0.0, 0.0)}
    with pytest.raises(ValueError, match="non-overlapping"):
        integrate_buckets([], [(at(0), at(1)), (at(0, 30), at(2))])


def test_affected_hours_of_a_late_point() -> None:
    assert affected_hours(at(10, 20), at(10, 50)) == (at(10), at(11))
    assert affected_hours(at(10, 20), at(12, 10)) == (at(10), at(12))  # held until 11:20 only
    assert affected_hours(at(10, 20)) == (at(10), at(12))
    assert affected_hours(at(10, 20), at(11)) == (at(10), at(11))
    assert affected_hours(at(10), max_hold=timedelta(hours=3)) == (at(10), at(13))
    with pytest.raises(ValueError):
        affected_hours(at(10), at(10))


def test_affected_ranges_merge() -> None:
    changes = [(at(5, 10), None), (at(1, 30), at(1, 40)), (at(1, 50), at(2, 5)), (at(6), None)]
    assert affected_ranges(changes) == [(at(1), at(3)), (at(5), at(7))]


def paris_day_rollups(day_start: datetime, day_end: datetime) -> dict[datetime, BucketEnergy]:
    # One sample at every UTC hour, each hour its own power: 100 W, 200 W, 300 W...
    samples = [(hour, 100.0 * (i + 1)) for i, hour in enumerate(utc_hours(day_start, day_end))]
    return integrate_hours(samples, day_start, day_end)


def test_the_day_paris_falls_back_has_25_hours_and_one_label_for_the_repeated_hour() -> None:
    day_start, day_end = datetime(2026, 10, 25, tzinfo=PARIS), datetime(2026, 10, 26, tzinfo=PARIS)
    rollups = paris_day_rollups(day_start, day_end)
    assert len(rollups) == 25
    assert hourly_composable(PARIS, day_start, day_end)
    report = energy_by_local_hour(rollups, PARIS)
    assert list(report) == ["2026-10-25"]
    hours = report["2026-10-25"]
    assert len(hours) == 24
    # 02:00 happens at 00:00 UTC (300 W, CEST) and again at 01:00 UTC (400 W, CET).
    assert hours["01:00"] == 200.0
    assert hours["02:00"] == 300.0 + 400.0
    assert hours["03:00"] == 500.0
    assert hours["23:00"] == 2500.0
    assert sum(hours.values()) == pytest.approx(sum(100.0 * i for i in range(1, 26)))

    items = energy_list(rollups, iter_buckets(day_start, day_end, HOUR, PARIS), PARIS)
    assert len(items) == 25
    assert [item["start"] for item in items[1:5]] == [
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]
    assert [item["wh"] for item in items[2:4]] == [300.0, 400.0]
    assert all(item["coverage"] == 1.0 for item in items)


def test_the_day_paris_springs_forward_has_23_hours_and_no_0200() -> None:
    day_start, day_end = datetime(2026, 3, 29, tzinfo=PARIS), datetime(2026, 3, 30, tzinfo=PARIS)
    rollups = paris_day_rollups(day_start, day_end)
    hours = energy_by_local_hour(rollups, PARIS)["2026-03-29"]
    assert len(hours) == 23
    assert "02:00" not in hours
    assert (hours["01:00"], hours["03:00"]) == (200.0, 300.0)
    items = energy_list(rollups, iter_buckets(day_start, day_end, HOUR, PARIS), PARIS)
    assert len(items) == 23
    assert items[2]["start"] == "2026-03-29T03:00:00+02:00"


def test_hours_without_coverage_are_left_out_of_the_dict_but_not_the_list() -> None:
    rollups = integrate_hours([(at(1, 30), 400)], at(0), at(4))  # known 01:30-02:30 only
    assert energy_by_local_hour(rollups, UTC) == {"2026-05-04": {"01:00": 200.0, "02:00": 200.0}}
    items = energy_list(rollups, iter_buckets(at(0), at(4), HOUR, UTC), UTC, ndigits=1)
    assert [(item["wh"], item["coverage"]) for item in items] == [(0.0, 0.0), (200.0, 0.5), (200.0, 0.5), (0.0, 0.0)]
    assert items[0]["start"] == "2026-05-04T00:00:00+00:00"


def test_kolkata_needs_raw_samples_over_local_hours() -> None:
    # 1000 W from 05:00 to 06:15 local (+05:30, sent again at 05:45), then 0 W.
    samples = [
        (datetime(2026, 7, 1, 5, tzinfo=KOLKATA), 1000),
        (datetime(2026, 7, 1, 5, 45, tzinfo=KOLKATA), 1000),
        (datetime(2026, 7, 1, 6, 15, tzinfo=KOLKATA), 0),
    ]
    day_start, day_end = datetime(2026, 7, 1, tzinfo=KOLKATA), datetime(2026, 7, 2, tzinfo=KOLKATA)
    assert not hourly_composable(KOLKATA, day_start, day_end)
    rollups = integrate_hours(samples, day_start, day_end)
    assert rollups[datetime(2026, 6, 30, 23, tzinfo=UTC)] == (500.0, 1800.0)  # 23:30-24:00 UTC
    with pytest.raises(ValueError, match="local hour"):
        energy_by_local_hour(rollups, KOLKATA)
    with pytest.raises(ValueError, match="straddles"):
        sum_into_buckets(rollups, iter_buckets(day_start, day_end, DAY, KOLKATA))

    local_hours = list(iter_buckets(day_start, day_end, HOUR, KOLKATA))
    direct = integrate_buckets(samples, local_hours)
    report = energy_by_local_hour(direct, KOLKATA)
    assert report == {"2026-07-01": {"05:00": 1000.0, "06:00": 250.0, "07:00": 0.0}}
    items = energy_list(direct, local_hours, KOLKATA)
    assert items[5] == {"start": "2026-07-01T05:00:00+05:30", "wh": 1000.0, "coverage": 1.0}
    assert items[7]["coverage"] == 0.25  # 0 W held from 06:15 to 07:15


def test_daily_totals_composed_from_hourly_rollups() -> None:
    samples = [
        (datetime(2026, 10, 24, 23, 10, tzinfo=PARIS), 1000),
        (datetime(2026, 10, 25, 0, 20, tzinfo=PARIS), 2000),
    ]
    start, end = datetime(2026, 10, 24, tzinfo=PARIS), datetime(2026, 10, 27, tzinfo=PARIS)
    days = list(iter_buckets(start, end, DAY, PARIS))
    rollups = integrate_hours(samples, start, end)
    daily = sum_into_buckets(rollups, days)
    assert list(daily) == [day for day, _ in days]
    assert daily[days[0][0]] == pytest.approx((50 * 1000 / 60, 3000.0))
    # 1000 W held until 00:10, nothing known until 00:20, then 2000 W for the hour it may hold.
    assert daily[days[1][0]] == pytest.approx((1000 / 6 + 2000.0, 4200.0))
    assert daily[days[2][0]] == (0.0, 0.0)
    for day_from, day_to in days:
        assert daily[day_from] == pytest.approx(integrate(samples, day_from, day_to))


# Property tests. Times are whole seconds from T0 and powers whole watts, so a reference can integrate
# exactly in fractions, with no float rounding and no hour splitting at all.
samples_strategy = st.lists(st.tuples(st.integers(0, 3 * 86_400), st.integers(0, 5000)), max_size=40).map(sorted)
hold_strategy = st.integers(60, 4 * 3600)


def reference_wh(samples: list[tuple[int, int]], start: int, end: int, hold: int) -> Fraction:
    total = Fraction(0)
    for i, (ts, watts) in enumerate(samples):
        until = ts + hold if i + 1 == len(samples) else min(ts + hold, samples[i + 1][0])
        lo, hi = max(ts, start), min(until, end)
        if hi > lo:
            total += Fraction(watts * (hi - lo), 3600)
    return total


def as_samples(raw: list[tuple[int, int]]) -> list[tuple[datetime, float]]:
    return [(T0 + timedelta(seconds=ts), float(watts)) for ts, watts in raw]


@PROPERTY
@given(
    raw=samples_strategy, hold=hold_strategy, start=st.integers(-3600, 86_400 * 2), length=st.integers(1, 86_400 * 2)
)
def test_hourly_energies_sum_to_the_integral_over_the_range(raw, hold, start, length) -> None:
    end = start + length
    hours = integrate_hours(
        as_samples(raw), T0 + timedelta(seconds=start), T0 + timedelta(seconds=end), max_hold=timedelta(seconds=hold)
    )
    assert list(hours) == utc_hours(T0 + timedelta(seconds=start), T0 + timedelta(seconds=end))
    expected = float(reference_wh(raw, start, end, hold))
    assert math.fsum(e.wh for e in hours.values()) == pytest.approx(expected, rel=1e-6, abs=1e-6)
    peak = max((watts for _, watts in raw), default=0)
    for energy in hours.values():
        assert 0 <= energy.covered_s <= 3600
        assert 0 <= energy.wh <= peak * energy.covered_s / 3600 + 1e-9


@PROPERTY
@given(raw=samples_strategy, hold=hold_strategy, new_ts=st.integers(0, 3 * 86_400), new_watts=st.integers(0, 5000))
def test_a_late_point_changes_only_the_affected_hours(raw, hold, new_ts, new_watts) -> None:
    max_hold = timedelta(seconds=hold)
    window = (T0 - timedelta(hours=6), T0 + timedelta(days=3, hours=6))
    before = integrate_hours(as_samples(raw), *window, max_hold=max_hold)
    merged = sorted(raw + [(new_ts, new_watts)], key=lambda sample: sample[0])  # stable: the new one last
    after = integrate_hours(as_samples(merged), *window, max_hold=max_hold)
    following = [ts for ts, _ in raw if ts > new_ts]
    new_at = T0 + timedelta(seconds=new_ts)
    next_at = T0 + timedelta(seconds=min(following)) if following else None
    hours_from, hours_to = affected_hours(new_at, next_at, max_hold=max_hold)
    for hour in before:
        if not hours_from <= hour < hours_to:
            assert after[hour] == before[hour]
    # What the store does: re-read the samples in [from - max_hold, to) and overwrite those hours.
    reread = [(ts, w) for ts, w in as_samples(merged) if hours_from - max_hold <= ts < hours_to]
    recomputed = integrate_hours(reread, hours_from, hours_to, max_hold=max_hold)
    assert list(recomputed) == utc_hours(hours_from, hours_to)
    for hour, energy in recomputed.items():
        assert energy == pytest.approx(after[hour], rel=1e-12, abs=1e-9)


@PROPERTY
@given(raw=samples_strategy, hold=hold_strategy, day=st.integers(0, 2))
def test_local_hours_from_raw_samples_equal_the_utc_rollups_in_paris(raw, hold, day) -> None:
    origin = datetime(2026, 10, 23, tzinfo=PARIS)
    samples = [(origin + timedelta(seconds=ts), float(watts)) for ts, watts in raw]
    start, end = datetime(2026, 10, 24 + day, tzinfo=PARIS), datetime(2026, 10, 25 + day, tzinfo=PARIS)
    rollups = integrate_hours(samples, start, end, max_hold=timedelta(seconds=hold))
    direct = integrate_buckets(samples, iter_buckets(start, end, HOUR, PARIS), max_hold=timedelta(seconds=hold))
    assert len(direct) == (25 if day == 1 else 24)
    assert direct == rollups
    assert energy_by_local_hour(direct, PARIS) == energy_by_local_hour(rollups, PARIS)
