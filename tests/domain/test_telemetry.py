from datetime import datetime, timezone

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetra.domain.ids import check_device_id, new_device_id
from telemetra.domain.jsonbody import check_depth, check_parsed, parse_json
from telemetra.domain.keys import generate_key, hash_key, visible_prefix
from telemetra.domain.models import Point
from telemetra.domain.telemetry import TelemetryLimits, parse_native_message, points_from_values
from telemetra.errors import InvalidJson, ValidationFailed

NOW = datetime(2026, 11, 22, tzinfo=timezone.utc)


def test_seed_002_message_parses() -> None:
    doc = {
        "data": {"temperature": 22.5, "humidity": 65, "pressure": 1013.25},
        "metadata": {"battery_level": 85, "signal_strength": -45},
        "type": "sensor",
    }
    parsed = parse_native_message(doc, now=NOW, limits=TelemetryLimits())
    assert (parsed.type, parsed.ts, parsed.metadata["battery_level"]) == ("sensor", None, 85)


def test_points_keep_types_skip_nulls_and_flatten() -> None:
    points = points_from_values(
        {"n": 3, "f": 1.5, "s": "on", "b": False, "gps": {"lat": 48.8, "fix": [1, None, 3]}, "z": None, "empty": {}},
        NOW,
    )
    assert points == [
        Point("n", NOW, 3.0),
        Point("f", NOW, 1.5),
        Point("s", NOW, "on"),
        Point("b", NOW, False),
        Point("gps.lat", NOW, 48.8),
        Point("gps.fix.0", NOW, 1.0),
        Point("gps.fix.2", NOW, 3.0),
    ]
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


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet='{[]}"ab'),
)
DOCS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=20,
)


def _refusal(check) -> str | None:
    try:
        check()
    except ValidationFailed as exc:
        return exc.code
    return None


@settings(max_examples=300, deadline=None)
@given(DOCS, st.integers(1, 6))
def test_parsed_nesting_check_agrees_with_the_full_walk(doc, max_depth: int) -> None:
    """The shortcut for orjson's documents (bracket count, containers only) refuses exactly what the full
    walk refuses, strings full of brackets included."""
    body = orjson.dumps(doc)
    assert _refusal(lambda: check_parsed(body, orjson.loads(body), max_depth)) == _refusal(
        lambda: check_depth(doc, max_depth)
    )


@pytest.mark.parametrize(
    "body",
    [
        b'{"t": 1e-400}',
        b'{"t": -2.5E-0400}',
        b"[1, [0." + b"0" * 400 + b"1]]",
        b'{"t": 0.' + b"0" * 250 + b"1e-99}",
        '{"t": 1e-400}'.encode("utf-16"),
    ],
)
def test_a_number_that_would_read_as_zero_is_refused(body: bytes) -> None:
    """orjson (and the standard parser) read 1e-400 as 0.0: a reading that was not 0 would be stored as 0."""
    with pytest.raises(ValidationFailed) as caught:
        parse_json(body, max_depth=32)
    assert caught.value.code == "number_out_of_range"


@pytest.mark.parametrize(
    "body, value",
    [
        (b'{"t": "1e-400"}', "1e-400"),
        (b'{"t": 0e-400}', 0.0),
        (b'{"t": -0.000E-999}', 0.0),
        (b'{"t": 1e-300}', 1e-300),
        (b'{"t": 1.5e-5}', 1.5e-5),
        (b'{"t": "' + b"0" * 500 + b'"}', "0" * 500),
    ],
)
def test_zero_and_small_numbers_and_strings_that_look_tiny_are_kept(body: bytes, value) -> None:
    assert parse_json(body, max_depth=32) == {"t": value}


def test_the_fallback_parser_reads_integers_as_orjson_does() -> None:
    """An integer past 64 bits read as an int (the standard parser, for a UTF-16 body) failed the store's
    serialisation of the message, and with it the whole batch; orjson reads it as a double."""
    big = '{"t": 1000000000000000000000000000000, "u": 18446744073709551615, "n": -9223372036854775809}'
    assert parse_json(big.encode("utf-16"), max_depth=32) == parse_json(big.encode(), max_depth=32)
    doc = parse_json(big.encode("utf-16"), max_depth=32)
    assert (type(doc["t"]), type(doc["u"]), type(doc["n"])) == (float, int, float)
    orjson.dumps(doc)
    with pytest.raises(ValidationFailed):
        parse_json(('{"t": 1' + "0" * 400 + "}").encode("utf-16"), max_depth=32)
