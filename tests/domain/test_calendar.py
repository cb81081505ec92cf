from bisect import bisect_right
from datetime import date, datetime, time, timedelta, timezone
from functools import cache
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetra.domain.calendar import (
    DAY,
    HOUR,
    Interval,
    bucket_end,
    bucket_start,
    day_start,
    hour_ceil_utc,
    hour_floor_utc,
    hourly_composable,
    hours_to_buckets,
    iter_buckets,
    parse_interval,
    parse_timezone,
    utc_hours,
)
from telemetra.errors import ValidationFailed

UTC = timezone.utc
PARIS = ZoneInfo("Europe/Paris")
KOLKATA = ZoneInfo("Asia/Kolkata")
SANTIAGO = ZoneInfo("America/Santiago")  # its clocks jump over midnight in September
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")  # its clocks move by half an hour
PROPERTY = settings(max_examples=200, deadline=None, database=None)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def labels(buckets, tz) -> list[str]:
    return [start.astimezone(tz).strftime("%H:%M%z") for start, _ in buckets]


@pytest.mark.parametrize(
    "text, count, unit",
    [
        ("1m", 1, "m"),
        ("5m", 5, "m"),
        ("15m", 15, "m"),
        ("30m", 30, "m"),
        ("1h", 1, "h"),
        ("6h", 6, "h"),
        ("12h", 12, "h"),
        ("1d", 1, "d"),
        ("1w", 1, "w"),
        ("1mo", 1, "mo"),
        (" 3mo ", 3, "mo"),
        ("90s", 90, "s"),
        ("45m", 45, "m"),
        ("2d", 2, "d"),
    ],
)
def test_parse_interval(text, count, unit) -> None:
    interval = parse_interval(text)
    assert (interval.count, interval.unit) == (count, unit)
    assert str(interval) == text.strip()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1",
        "m",
        "h1",
        "0m",
        "7m",
        "25h",
        "1M",
        "1H",
        "1y",
        "-1h",
        "1.5h",
        "1 h",
        "5mo",
        "400d",
        "60w",
        "1hh",
        "100000m",
        None,
        15,
    ],
)
def test_parse_interval_refuses(text) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_interval(text)
    assert caught.value.code == "invalid_interval"
    assert caught.value.status == 422


def test_interval_properties() -> None:
    assert parse_interval("15m").fixed_seconds == 900 and not parse_interval("15m").is_calendar
    assert parse_interval("1mo").fixed_seconds is None and parse_interval("1mo").is_calendar
    assert parse_interval("1w").nominal == timedelta(days=7)
    assert parse_interval("6h").nominal == timedelta(hours=6)
    with pytest.raises(ValueError):
        Interval(7, "m")  # built directly, the same rules apply


def test_parse_timezone() -> None:
    assert parse_timezone("Europe/Paris") == PARIS
    assert parse_timezone(" Asia/Kolkata ") == KOLKATA
    assert parse_timezone(None) == ZoneInfo("UTC")
    assert parse_timezone("") == ZoneInfo("UTC")


@pytest.mark.parametrize(
    "name",
    [
        "Mars/Olympus_Mons",
        "../etc/passwd",
        "/etc/localtime",
        "localtime",
        "Europe/Paris\x00",
        "Europe//Paris",
        "x" * 80,
    ],
)
def test_parse_timezone_refuses(name) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_timezone(name)
    assert caught.value.code == "invalid_timezone"


def test_hour_floor_and_ceil() -> None:
    in_paris = datetime(2026, 7, 1, 10, 42, 7, 5, tzinfo=PARIS)
    assert hour_floor_utc(in_paris) == utc(2026, 7, 1, 8)
    assert hour_floor_utc(in_paris).tzinfo is UTC
    assert hour_ceil_utc(in_paris) == utc(2026, 7, 1, 9)
    assert hour_ceil_utc(utc(2026, 7, 1, 9)) == utc(2026, 7, 1, 9)
    assert hour_floor_utc(datetime(2026, 7, 1, 10, 42, tzinfo=KOLKATA)) == utc(2026, 7, 1, 5)
    assert utc_hours(utc(2026, 1, 1, 0, 30), utc(2026, 1, 1, 2, 0, 1)) == [utc(2026, 1, 1, h) for h in (0, 1, 2)]
    with pytest.raises(ValueError):
        hour_floor_utc(datetime(2026, 7, 1, 10))


def test_one_hour_buckets_on_the_day_paris_falls_back() -> None:
    day = list(iter_buckets(utc(2026, 10, 24, 22), utc(2026, 10, 25, 23), HOUR, PARIS))
    assert len(day) == 25
    assert all(end - start == timedelta(hours=1) for start, end in day)
    assert [start for start, _ in day] == [utc(2026, 10, 24, 22) + timedelta(hours=i) for i in range(25)]
    assert labels(day, PARIS)[:5] == ["00:00+0200", "01:00+0200", "02:00+0200", "02:00+0100", "03:00+0100"]
    first, second = (bucket_start(utc(2026, 10, 25, h, 30), HOUR, PARIS) for h in (0, 1))
    assert (first.isoformat(), second.isoformat()) == ("2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00")


def test_one_hour_buckets_on_the_day_paris_springs_forward() -> None:
    day = list(iter_buckets(utc(2026, 3, 28, 23), utc(2026, 3, 29, 22), HOUR, PARIS))
    assert len(day) == 23
    assert labels(day, PARIS)[:4] == ["00:00+0100", "01:00+0100", "03:00+0200", "04:00+0200"]
    assert not any(label.startswith("02:") for label in labels(day, PARIS))


def test_fifteen_minutes_across_fall_back_give_two_sets_for_the_repeated_hour() -> None:
    buckets = list(iter_buckets(utc(2026, 10, 25, 0), utc(2026, 10, 25, 2), parse_interval("15m"), PARIS))
    assert labels(buckets, PARIS) == [
        "02:00+0200",
        "02:15+0200",
        "02:30+0200",
        "02:45+0200",
        "02:00+0100",
        "02:15+0100",
        "02:30+0100",
        "02:45+0100",
    ]
    assert all(end - start == timedelta(minutes=15) for start, end in buckets)
    early = bucket_start(utc(2026, 10, 25, 0, 20), parse_interval("15m"), PARIS)
    late = bucket_start(utc(2026, 10, 25, 1, 20), parse_interval("15m"), PARIS)
    assert early.strftime("%H:%M") == late.strftime("%H:%M") == "02:15"
    # Compare in UTC: between two times of one ZoneInfo, ``-`` and ``==`` look at the wall clock (PEP 495).
    assert late.astimezone(UTC) - early.astimezone(UTC) == timedelta(hours=1)


def test_wall_clock_boundaries_in_a_gap_are_dropped() -> None:
    # 45 min from midnight: 01:30 then 02:15, which does not exist on 2026-03-29; 03:00 CEST comes next.
    buckets = list(iter_buckets(utc(2026, 3, 29, 0), utc(2026, 3, 29, 2), parse_interval("45m"), PARIS))
    assert labels(buckets, PARIS) == ["00:45+0100", "01:30+0100", "03:00+0200", "03:45+0200"]
    assert buckets[1][1] - buckets[1][0] == timedelta(minutes=30)


def test_days_last_23_or_25_hours_when_the_clocks_change() -> None:
    spring = bucket_start(datetime(2026, 3, 29, 23, 30, tzinfo=PARIS), DAY, PARIS)
    assert spring.isoformat() == "2026-03-29T00:00:00+01:00"
    assert bucket_end(spring, DAY, PARIS) - spring == timedelta(hours=23)
    autumn = bucket_start(utc(2026, 10, 25, 12), DAY, PARIS)
    assert autumn.isoformat() == "2026-10-25T00:00:00+02:00"
    assert bucket_end(autumn, DAY, PARIS) - autumn == timedelta(hours=25)
    # 21:30 UTC is 23:30 on the 24th in Paris; 22:30 UTC is already 00:30 on the 25th.
    assert bucket_start(utc(2026, 10, 24, 21, 30), DAY, PARIS).date() == date(2026, 10, 24)
    assert bucket_start(utc(2026, 10, 24, 22, 30), DAY, PARIS).date() == date(2026, 10, 25)


def test_a_day_whose_midnight_is_skipped_starts_after_the_gap() -> None:
    start = day_start(date(2026, 9, 6), SANTIAGO)
    assert start.astimezone(SANTIAGO).isoformat() == "2026-09-06T01:00:00-03:00"
    assert bucket_start(start + timedelta(hours=5), DAY, SANTIAGO) == start
    assert bucket_start(start - timedelta(microseconds=1), DAY, SANTIAGO).date() == date(2026, 9, 5)
    assert bucket_end(day_start(date(2026, 9, 5), SANTIAGO), DAY, SANTIAGO) == start
    # The start of the day opens a bucket of every width, though 01:00 is not on a 45 min grid.
    for interval in ("15m", "45m", "1h", "2h", "3h"):
        assert bucket_start(start + timedelta(minutes=10), parse_interval(interval), SANTIAGO) == start
    around = iter_buckets(start - timedelta(hours=3), start + timedelta(hours=2), parse_interval("45m"), SANTIAGO)
    assert labels(around, SANTIAGO) == [
        "21:00-0400",
        "21:45-0400",
        "22:30-0400",
        "23:15-0400",
        "01:00-0300",
        "01:30-0300",
        "02:15-0300",
    ]


def test_weeks_start_on_monday_and_months_on_the_first_across_dst() -> None:
    week = bucket_start(utc(2026, 10, 25, 12), parse_interval("1w"), PARIS)  # a Sunday
    assert week.isoformat() == "2026-10-19T00:00:00+02:00"
    assert week.weekday() == 0
    assert bucket_end(week, parse_interval("1w"), PARIS) - week == timedelta(days=7, hours=1)
    october = bucket_start(utc(2026, 10, 31, 23, 30), parse_interval("1mo"), PARIS)  # 00:30 on 1 Nov in Paris
    assert october.isoformat() == "2026-11-01T00:00:00+01:00"
    october = bucket_start(utc(2026, 10, 15), parse_interval("1mo"), PARIS)
    assert october.isoformat() == "2026-10-01T00:00:00+02:00"
    assert bucket_end(october, parse_interval("1mo"), PARIS) - october == timedelta(days=31, hours=1)
    march = bucket_start(utc(2026, 3, 15), parse_interval("1mo"), PARIS)
    assert bucket_end(march, parse_interval("1mo"), PARIS) - march == timedelta(days=31, hours=-1)
    quarter = bucket_start(utc(2026, 8, 20), parse_interval("3mo"), PARIS)
    assert quarter.isoformat() == "2026-07-01T00:00:00+02:00"
    assert (
        bucket_end(quarter, parse_interval("3mo"), PARIS).astimezone(PARIS).isoformat() == "2026-10-01T00:00:00+02:00"
    )
    december = list(iter_buckets(utc(2026, 11, 20), utc(2027, 2, 1), parse_interval("1mo"), UTC))
    assert [start.month for start, _ in december] == [11, 12, 1]


def test_seven_days_and_one_week_are_the_same_buckets() -> None:
    for day in range(14):
        ts = utc(2026, 5, 1) + timedelta(days=day, hours=7)
        assert bucket_start(ts, parse_interval("7d"), PARIS) == bucket_start(ts, parse_interval("1w"), PARIS)


def test_kolkata_hours_are_local_hours_and_not_composable() -> None:
    start = bucket_start(utc(2026, 7, 1, 10, 10), HOUR, KOLKATA)
    assert start.isoformat() == "2026-07-01T15:00:00+05:30"
    assert start.astimezone(UTC) == utc(2026, 7, 1, 9, 30)
    assert day_start(date(2026, 7, 1), KOLKATA) == utc(2026, 6, 30, 18, 30)
    assert not hourly_composable(KOLKATA, utc(2026, 7, 1), utc(2026, 7, 2))
    assert not hourly_composable(ZoneInfo("Asia/Kathmandu"), utc(2026, 7, 1), utc(2026, 7, 2))
    assert not hourly_composable(KOLKATA, utc(2026, 7, 1), utc(2026, 7, 2), HOUR)


def test_whole_hour_zones_are_composable() -> None:
    year = (utc(2026, 1, 1), utc(2027, 1, 1))
    assert hourly_composable(PARIS, *year)
    assert hourly_composable(ZoneInfo("America/New_York"), *year)
    assert hourly_composable(UTC, *year)
    assert hourly_composable(PARIS, *year, parse_interval("1mo"))
    assert hourly_composable(PARIS, *year, parse_interval("6h"))
    assert not hourly_composable(PARIS, *year, parse_interval("15m"))
    # Lord Howe's offset is +11 in the southern summer and +10:30 in winter.
    assert hourly_composable(LORD_HOWE, utc(2026, 1, 1), utc(2026, 1, 10))
    assert not hourly_composable(LORD_HOWE, utc(2026, 1, 1), utc(2026, 12, 31))


def test_hours_to_buckets() -> None:
    days = list(iter_buckets(utc(2026, 10, 24, 22), utc(2026, 10, 26, 23), DAY, PARIS))
    hours = utc_hours(utc(2026, 10, 24, 20), utc(2026, 10, 27))
    owner = hours_to_buckets(hours, days)
    assert utc(2026, 10, 24, 21) not in owner  # before the first bucket
    assert sum(1 for hour in hours if owner.get(hour) == days[0][0]) == 25
    assert owner[utc(2026, 10, 25, 23)] == days[1][0]
    kolkata_days = list(iter_buckets(utc(2026, 7, 1), utc(2026, 7, 2), DAY, KOLKATA))
    with pytest.raises(ValueError, match="straddles"):
        hours_to_buckets([utc(2026, 6, 30, 18)], kolkata_days)
    with pytest.raises(ValueError, match="straddles"):
        hours_to_buckets([utc(2026, 7, 1, 18)], kolkata_days)


# A reference for wall-clock buckets, made by brute force: walk UTC minute by minute, and every minute
# whose local time is a multiple of the interval since local midnight, or that begins a new local date,
# is a boundary. These zones change offset on whole minutes.
ZONES = {
    "Europe/Paris": [date(2026, 3, 29), date(2026, 10, 25)],
    "America/Santiago": [date(2026, 4, 5), date(2026, 9, 6)],
    "Australia/Lord_Howe": [date(2026, 4, 4), date(2026, 10, 3)],
    "Asia/Kolkata": [date(2026, 6, 1)],
    "America/New_York": [date(2026, 3, 8), date(2026, 11, 1)],
}
INTERVALS = ["1m", "15m", "30m", "45m", "1h", "2h", "3h", "1d"]


@cache
def _walls(zone: str, center: date) -> tuple[tuple[datetime, int, date], ...]:
    tz, minute = ZoneInfo(zone), datetime.combine(center - timedelta(days=3), time(0), UTC)
    walls = []
    for _ in range(6 * 1440):
        local = minute.astimezone(tz)
        walls.append((minute, local.hour * 60 + local.minute, local.date()))
        minute += timedelta(minutes=1)
    return tuple(walls)


@cache
def _boundaries(zone: str, center: date, interval: str) -> list[datetime]:
    step = parse_interval(interval).fixed_seconds // 60 if interval != "1d" else 1440
    walls, found = _walls(zone, center), []
    for index, (instant, wall, day) in enumerate(walls):
        if index and (day != walls[index - 1][2] or wall % step == 0):
            found.append(instant)
    return found


@pytest.mark.parametrize("interval", INTERVALS[1:])
@pytest.mark.parametrize("zone, center", [(zone, day) for zone, days in ZONES.items() for day in days])
def test_every_boundary_around_a_change_matches_brute_force(zone, center, interval) -> None:
    tz, every = ZoneInfo(zone), parse_interval(interval)
    reference = [
        b
        for b in _boundaries(zone, center, interval)
        if datetime.combine(center - timedelta(days=1), time(0), UTC)
        <= b
        < datetime.combine(center + timedelta(days=2), time(0), UTC)
    ]
    found = list(iter_buckets(reference[0], reference[-1], every, tz))
    assert [start for start, _ in found] == reference[:-1]
    assert [end for _, end in found] == reference[1:]
    for previous, boundary in pairwise(reference):
        assert bucket_start(boundary - timedelta(microseconds=1), every, tz).astimezone(UTC) == previous


@PROPERTY
@given(
    case=st.sampled_from([(zone, day) for zone, days in ZONES.items() for day in days]),
    interval=st.sampled_from(INTERVALS),
    offset=st.integers(min_value=-86_400 * 1_000_000, max_value=86_400 * 1_000_000),
)
def test_bucket_start_and_end_match_brute_force(case, interval, offset) -> None:
    zone, center = case
    tz = ZoneInfo(zone)
    ts = datetime.combine(center, time(12), UTC) + timedelta(microseconds=offset)
    reference = _boundaries(zone, center, interval)
    index = bisect_right(reference, ts) - 1
    start = bucket_start(ts, parse_interval(interval), tz)
    assert start.tzinfo is tz
    assert start.astimezone(UTC) == reference[index]
    assert bucket_end(start, parse_interval(interval), tz) == reference[index + 1]


@PROPERTY
@given(
    zone=st.sampled_from(sorted(ZONES)),
    interval=st.sampled_from(["15m", "1h", "6h", "1d", "1w", "1mo", "2d"]),
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)),
    hours=st.integers(min_value=1, max_value=24 * 15),
)
def test_iter_buckets_tile_the_range(zone, interval, start, hours) -> None:
    tz, every = ZoneInfo(zone), parse_interval(interval)
    end = start + timedelta(hours=hours)
    buckets = list(iter_buckets(start, end, every, tz))
    assert buckets[0][0] <= start < buckets[0][1]
    assert buckets[-1][0] < end <= buckets[-1][1]
    for (_, previous_end), (next_start, _) in pairwise(buckets):
        assert previous_end == next_start
    for bucket_from, bucket_to in buckets:
        assert bucket_from < bucket_to
        assert bucket_start(bucket_from, every, tz).astimezone(UTC) == bucket_from
        assert bucket_start(bucket_to - timedelta(microseconds=1), every, tz).astimezone(UTC) == bucket_from
