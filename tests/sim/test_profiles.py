"""Simulated devices send messages our own formats accept, with daily cycles, spikes, and only changes."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from telemetra.domain.formats import normalize
from telemetra.domain.telemetry import TelemetryLimits
from telemetra.sim.profiles import PROFILES, SPIKE_PROBABILITY, DeviceState, make_message

NOON = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
EXPECTED_FORMAT = {"environment": "native", "energy": "property", "gym": "flat", "meter": "ts_values"}


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_profile_speaks_its_seed_format_and_carries_a_msg_id(profile: str) -> None:
    state = DeviceState(index=3, device_id="dev-3")
    rng = random.Random(7)
    bodies = [make_message(profile, state, NOON + timedelta(seconds=i), rng) for i in range(50)]

    parsed = [normalize(body, now=NOON + timedelta(minutes=1), limits=TelemetryLimits()) for body in bodies]

    assert {p.format for p in parsed} == {EXPECTED_FORMAT[profile]}
    assert all(p.values for p in parsed)
    assert len({p.msg_id for p in parsed}) == 50  # unique, so a retry is recognised and not stored twice
    assert state.seq == 50


def test_environment_follows_the_day_and_has_occasional_spikes() -> None:
    def mean_temperature(hour: int) -> float:
        rng, state = random.Random(1), DeviceState(index=0, device_id="d")
        at = NOON.replace(hour=hour)
        return sum(make_message("environment", state, at, rng)["data"]["temperature"] for _ in range(400)) / 400

    assert mean_temperature(15) - mean_temperature(3) > 4  # warm afternoon, cold night (amplitude 3 °C)

    rng, state = random.Random(2), DeviceState(index=0, device_id="d")
    temperatures = [make_message("environment", state, NOON, rng)["data"]["temperature"] for _ in range(5000)]
    spikes = sum(1 for t in temperatures if t > 40)
    assert 0.3 * SPIKE_PROBABILITY * 5000 < spikes < 3 * SPIKE_PROBABILITY * 5000


def test_energy_devices_send_only_the_properties_that_changed() -> None:
    rng, state = random.Random(3), DeviceState(index=0, device_id="heater-1")
    night = NOON.replace(hour=4)  # heating: power changes with noise on every message
    first = make_message("energy", state, night, rng)
    assert {p["code"] for p in first["bizData"]["properties"]} == {"instant_power", "temp_interior"}
    afternoon = NOON.replace(hour=15)
    sent = [make_message("energy", state, afternoon, rng) for _ in range(30)]
    # Off in the afternoon: power stays 0 and is not repeated once sent.
    powers = [p for body in sent for p in body["bizData"]["properties"] if p["code"] == "instant_power"]
    assert len(powers) <= 3 and all(body["bizData"]["properties"] for body in sent)
