from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from telemetra.domain.timeparse import TimestampError, isoformat, parse_query_time, parse_timestamp

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
WINDOW = dict(now=NOW, oldest=datetime(2000, 1, 1, tzinfo=timezone.utc), max_future=timedelta(days=1))


@pytest.mark.parametrize(
    "value, expected",
    [
        (1732631573782, datetime(2024, 11, 26, 14, 32, 53, 782000, tzinfo=timezone.utc)),  # seed 001: ms
        (1732631573, datetime(2024, 11, 26, 14, 32, 53, tzinfo=timezone.utc)),  # seconds
        (1732631573.5, datetime(2024, 11, 26, 14, 32, 53, 500000, tzinfo=timezone.utc)),
        ("1732631573782", datetime(2024, 11, 26, 14, 32, 53, 782000, tzinfo=timezone.utc)),
        ("2024-11-26T14:32:53Z", datetime(2024, 11, 26, 14, 32, 53, tzinfo=timezone.utc)),
        ("2024-11-26T14:32:53", datetime(2024, 11, 26, 14, 32, 53, tzinfo=timezone.utc)),  # naive = UTC
        ("2024-11-26T15:32:53+01:00", datetime(2024, 11, 26, 14, 32, 53, tzinfo=timezone.utc)),
    ],
)
def test_parse_timestamp_forms(value, expected) -> None:
    assert parse_timestamp(value, **WINDOW) == expected


def test_epoch_threshold_between_seconds_and_milliseconds() -> None:
    just_below = parse_timestamp(
        99_999_999_999, now=datetime(6000, 1, 1, tzinfo=timezone.utc), oldest=WINDOW["oldest"], max_future=timedelta(0)
    )
    assert just_below.year == 5138  # still seconds
    assert (
        parse_timestamp(
            100_000_000_000, now=NOW, oldest=datetime(1970, 1, 1, tzinfo=timezone.utc), max_future=timedelta(0)
        ).year
        == 1973
    )  # milliseconds from 1e11


@pytest.mark.parametrize(
    "value",
    [
        "",
        "soon",
        None,
        True,
        [1],
        float("nan"),
        "1999-12-31T00:00:00Z",
        NOW + timedelta(days=2),
        "2026-11-24T00:00:00Z",
        1e300,
    ],
)
def test_parse_timestamp_refuses(value) -> None:
    if isinstance(value, datetime):
        value = value.isoformat()
    with pytest.raises(TimestampError):
        parse_timestamp(value, **WINDOW)


def test_query_date_is_midnight_in_zone() -> None:
    assert parse_query_time("2026-03-29") == datetime(2026, 3, 29, tzinfo=timezone.utc)
    paris = parse_query_time("2026-07-01", ZoneInfo("Europe/Paris"))
    assert paris == datetime(2026, 6, 30, 22, 0, tzinfo=timezone.utc)
    assert parse_query_time("2026-07-01T10:00:00", ZoneInfo("Europe/Paris")).hour == 8
    with pytest.raises(TimestampError):
        parse_query_time("2026-13-01")


def test_isoformat_always_has_an_offset() -> None:
    assert isoformat(datetime(2026, 1, 1)) == "2026-01-01T00:00:00+00:00"
    assert isoformat(None) is None
