"""Every known message shape normalises to the same kind of points; the seeds' own examples included."""

from datetime import datetime, timezone

import pytest

from telemetra.domain.formats import normalize
from telemetra.domain.models import Point
from telemetra.domain.telemetry import TelemetryLimits, build_points
from telemetra.errors import ValidationFailed

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
LIMITS = TelemetryLimits()


def _points(doc):
    msg = normalize(doc, now=NOW, limits=LIMITS)
    return msg, build_points(msg.values, msg.ts or NOW, LIMITS)


def test_seed_001_property_message() -> None:
    doc = {
        "bizCode": "devicePropertyMessage",
        "bizData": {
            "devId": "bfadafebb608a154206aqu",
            "productId": "ixhko1cls7lzpwsf",
            "properties": [{"code": "instant_power", "dpId": 1, "time": 1732631573782, "value": 2500}],
        },
        "ts": 1732631573782,
    }
    msg, points = _points(doc)
    when = datetime(2024, 11, 26, 14, 32, 53, 782000, tzinfo=timezone.utc)
    assert (msg.format, msg.device_id, msg.ts) == ("property", "bfadafebb608a154206aqu", when)
    assert points == [Point("instant_power", when, 2500.0)]
    assert msg.metadata["productId"] == "ixhko1cls7lzpwsf"


def test_property_times_are_their_own() -> None:
    doc = {
        "bizCode": "devicePropertyMessage",
        "ts": 1732631573782,
        "bizData": {
            "devId": "d1",
            "dataId": "abc-1",
            "properties": [
                {"code": "instant_power", "dpId": 1, "time": 1732631500000, "value": 2500},
                {"code": "temp_interior", "dpId": 2, "value": 19.5},
            ],
        },
    }
    msg, points = _points(doc)
    assert msg.msg_id == "abc-1"  # dataId identifies the message
    assert [(p.key, p.ts.second, p.value) for p in points] == [
        ("instant_power", 40, 2500.0),
        ("temp_interior", 53, 19.5),
    ]


def test_seed_002_native() -> None:
    msg, points = _points(
        {
            "data": {"temperature": 22.5, "humidity": 65},
            "metadata": {"battery_level": 85},
            "type": "sensor",
            "msg_id": 42,
        }
    )
    assert (msg.format, msg.type, msg.msg_id, msg.ts) == ("native", "sensor", "42", None)
    assert points == [Point("temperature", NOW, 22.5), Point("humidity", NOW, 65.0)]


def test_seed_003_flat_sensor_object() -> None:
    doc = {
        "machine_id": 1,
        "timestamp": "2026-11-22T10:00:00",
        "acceleration_x": 1.2,
        "acceleration_y": 0.5,
        "acceleration_z": -9.81,
        "repetitions": 10,
        "series_time": 30.5,
        "rest_time": 60.0,
    }
    msg, points = _points(doc)
    assert msg.format == "flat" and msg.ts == datetime(2026, 11, 22, 10, tzinfo=timezone.utc)
    assert {p.key: p.value for p in points} == {
        "machine_id": 1.0,
        "acceleration_x": 1.2,
        "acceleration_y": 0.5,
        "acceleration_z": -9.81,
        "repetitions": 10.0,
        "series_time": 30.5,
        "rest_time": 60.0,
    }


def test_seed_004_arrays() -> None:
    msg, points = _points({"voltages": [230.1, 229.8, 231.0], "currents": [1.2, 0.9, 1.1]})
    assert msg.format == "flat" and msg.data["voltages"] == [230.1, 229.8, 231.0]
    assert {p.key: p.value for p in points} == {
        "voltages.0": 230.1,
        "voltages.1": 229.8,
        "voltages.2": 231.0,
        "currents.0": 1.2,
        "currents.1": 0.9,
        "currents.2": 1.1,
    }


def test_plain_object_and_ts_values_give_the_same_points() -> None:
    _, plain = _points({"temperature": 21.5, "ts": 1795341600000})
    _, tb = _points({"ts": 1795341600000, "values": {"temperature": 21.5}})
    _, native = _points({"data": {"temperature": 21.5}, "timestamp": "2026-11-22T10:00:00Z"})
    assert plain == tb == native == [Point("temperature", datetime(2026, 11, 22, 10, tzinfo=timezone.utc), 21.5)]


@pytest.mark.parametrize(
    "doc, code",
    [
        ({}, "validation_error"),
        ([1], "validation_error"),
        ("x", "validation_error"),
        ({"bizCode": "devicePropertyMessage"}, "invalid_data"),
        ({"bizCode": "devicePropertyMessage", "bizData": {"devId": "d", "properties": []}}, "invalid_data"),
        ({"bizCode": "devicePropertyMessage", "bizData": {"devId": "d", "properties": [{"value": 1}]}}, "invalid_data"),
        ({"ts": 1795341600000, "values": {}}, "invalid_data"),
        ({"timestamp": "2026-11-22T10:00:00Z"}, "invalid_data"),
        ({"t": 1, "msg_id": ["x"]}, "invalid_msg_id"),
        ({"t": 1, "ts": "never"}, "invalid_timestamp"),
    ],
)
def test_shapes_that_do_not_fit(doc, code) -> None:
    with pytest.raises(ValidationFailed) as err:
        normalize(doc, now=NOW, limits=LIMITS)
    assert err.value.code == code


PROPERTY = {
    "bizCode": "devicePropertyMessage",
    "ts": 1732631573782,
    "bizData": {"devId": "d1", "properties": [{"code": "instant_power", "dpId": 1, "value": 2500}]},
}


@pytest.mark.parametrize(
    "doc, code, where",
    [
        ({"data": {"s": "a\x00b"}}, "invalid_string", "data.s"),
        ({"data": {"j": {"x": ["ok", "\x00"]}}}, "invalid_string", "data.j.x.1"),
        ({"data": {"j": {"k\x00": None}}}, "invalid_key", "data.j.k\x00"),
        ({"data": {"j": {"k": {"\x00": []}}}}, "invalid_key", "data.j.k.\x00"),
        ({"data": {"t": 1}, "metadata": {"m": {"n": [1, "a\x00"]}}}, "invalid_string", "metadata.m.n.1"),
        ({"data": {"t": 1}, "metadata": {"m": {"k\x00": 1}}}, "invalid_key", "metadata.m"),
        ({"data": {"t": 1}, "type": "a\x00b"}, "invalid_type", "'type'"),
        ({"data": {"t": 1}, "type": "a\nb"}, "invalid_type", "'type'"),
        ({"data": {"t": 1}, "msg_id": "a\x00b"}, "invalid_msg_id", "'msg_id'"),
        ({"t": 1, "msg_id": "a\tb"}, "invalid_msg_id", "'msg_id'"),
        ({"ts": 1732631573782, "values": {"s": "\x00"}}, "invalid_string", "data.s"),
        ({**PROPERTY, "bizData": {**PROPERTY["bizData"], "dataId": "x\x00"}}, "invalid_string", "metadata.dataId"),
        ({**PROPERTY, "bizData": {**PROPERTY["bizData"], "dataId": "x\r"}}, "invalid_msg_id", "'msg_id'"),
        (
            {**PROPERTY, "bizData": {**PROPERTY["bizData"], "productId": "p\x00"}},
            "invalid_string",
            "metadata.productId",
        ),
    ],
)
def test_a_nul_anywhere_a_message_stores_a_string_is_refused_and_named(doc, code, where) -> None:
    """PostgreSQL refuses U+0000 in text and jsonb: a message holding one failed its whole batch."""
    with pytest.raises(ValidationFailed) as caught:
        _points(doc)
    assert caught.value.code == code and where in caught.value.message


def test_other_control_characters_are_kept_in_values_and_metadata() -> None:
    msg, points = _points({"data": {"s": "line 1\nline 2\t\x01"}, "metadata": {"m": "\x1f"}, "msg_id": "m-1"})
    assert points[0].value == "line 1\nline 2\t\x01" and msg.metadata == {"m": "\x1f"}


@pytest.mark.parametrize(
    "data, key",
    [
        ({"a": {"b": 1}, "a.b": 2}, "a.b"),
        ({"a.b": 2, "a": {"b": 1}}, "a.b"),
        ({"a": {"b.c": 1, "b": {"c": 2}}}, "a.b.c"),
        ({"x": [1, 2], "x.1": 3}, "x.1"),
        ({"a": {"b": {"c": 1}}, "a.b": {"c": 2}}, "a.b.c"),
    ],
)
def test_two_values_flattened_to_one_key_are_refused(data, key) -> None:
    """One of the two was silently dropped."""
    with pytest.raises(ValidationFailed) as caught:
        _points({"data": data})
    assert caught.value.code == "key_collision" and f"'{key}'" in caught.value.message


def test_flattened_keys_that_differ_or_differ_in_time_are_kept() -> None:
    _, points = _points({"data": {"a": {"b": 1}, "a.c": 2, "ab": 3}})
    assert {p.key for p in points} == {"a.b", "a.c", "ab"}
    doc = {
        **PROPERTY,
        "bizData": {
            "devId": "d1",
            "properties": [
                {"code": "gps", "time": 1732631573000, "value": {"lat": 1}},
                {"code": "gps", "time": 1732631574000, "value": {"lat": 2}},
                {"code": "p", "value": 1},
                {"code": "p", "value": 2},
            ],
        },
    }  # a plain repeat: the later wins, as before
    _, points = _points(doc)
    assert [(p.key, p.value) for p in points] == [("gps.lat", 1.0), ("gps.lat", 2.0), ("p", 1.0), ("p", 2.0)]
