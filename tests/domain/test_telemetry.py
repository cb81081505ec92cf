from datetime import datetime, timezone

import pytest

from telemetra.domain.ids import check_device_id, new_device_id
from telemetra.domain.jsonbody import parse_json
from telemetra.domain.keys import generate_key, hash_key, visible_prefix
from telemetra.domain.models import Point
from telemetra.domain.telemetry import TelemetryLimits, parse_native_message, points_from_values
from telemetra.errors import InvalidJson, ValidationFailed

NOW = datetime(2026, 11, 22, tzinfo=timezone.utc)


def test_seed_002_message_parses() -> None:
    doc = {"data": {"temperature": 22.5, "humidity": 65, "pressure": 1013.25},
           "metadata": {"battery_level": 85, "signal_strength": -45}, "type": "sensor"}
    parsed = parse_native_message(doc, now=NOW, limits=TelemetryLimits())
    assert (parsed.type, parsed.ts, parsed.metadata["battery_level"]) == ("sensor", None, 85)


def test_points_keep_types_skip_nulls_and_flatten() -> None:
    points = points_from_values({"n": 3, "f": 1.5, "s": "on", "b": False, "gps": {"lat": 48.8, "fix": [1, None, 3]},
                                 "z": None, "empty": {}}, NOW)
    assert points == [Point("n", NOW, 3.0), Point("f", NOW, 1.5), Point("s", NOW, "on"), Point("b", NOW, False),
                      Point("gps.lat", NOW, 48.8), Point("gps.fix.0", NOW, 1.0), Point("gps.fix.2", NOW, 3.0)]
    assert isinstance(points[0].value, float) and points[3].value is False


def test_flattened_leaves_count_against_the_limit() -> None:
    with pytest.raises(ValidationFailed) as err:
        points_from_values({"voltages": list(range(10))}, NOW, TelemetryLimits(max_keys=5))
    assert err.value.code == "too_many_keys"


def test_limits_are_configurable() -> None:
    with pytest.raises(ValidationFailed) as err:
        parse_native_message({"data": {"a": 1, "b": 2}}, now=NOW, limits=TelemetryLimits(max_keys=1))
    assert err.value.code == "too_many_keys"


def test_parse_json_classifies_errors() -> None:
    assert parse_json(b'{"a": [1, {"b": 2}]}', max_depth=3) == {"a": [1, {"b": 2}]}
    with pytest.raises(InvalidJson):
        parse_json(b"{", max_depth=3)
    with pytest.raises(ValidationFailed):
        parse_json(b'{"a": NaN}', max_depth=3)
    with pytest.raises(ValidationFailed) as err:
        parse_json(b'{"a": [1, {"b": 2}]}', max_depth=2)
    assert err.value.code == "too_deep"
    assert parse_json(b'{"big": 123456789012345678901234567890}', max_depth=2)["big"] > 1e29


def test_device_id_rules() -> None:
    assert check_device_id("bfadafebb608a154206aqu") is None
    assert check_device_id("raspberry1") is None and check_device_id("site:a.b_c-1") is None
    for bad in ("register", "TELEMETRY", "_x", "a b", "é", "x" * 129):
        assert check_device_id(bad) is not None, bad
    fresh = {new_device_id() for _ in range(100)}
    assert len(fresh) == 100 and all(check_device_id(i) is None for i in fresh)


def test_keys_are_random_hashed_and_prefixed() -> None:
    a, b = generate_key("tenant"), generate_key("tenant")
    assert a != b and a.startswith("tlmt_") and len(a) >= 5 + 43
    assert hash_key(a) != hash_key(b) and len(hash_key(a)) == 32
    assert visible_prefix(a) == a[:11] and a not in visible_prefix(a)[5:] + "x"
