"""What simulated devices send: daily cycles, noise and occasional spikes, in each source system's format.

Pure: a profile turns (device index, sequence number, time, random generator) into a message body.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["PROFILES", "DeviceState", "make_message"]

SPIKE_PROBABILITY = 0.01  # about one message in a hundred carries an outlier, for anomaly rules to find
DAY_S = 86_400


@dataclass
class DeviceState:
    """What a simulated device remembers between messages (the energy profile sends only changes)."""

    index: int
    device_id: str
    seq: int = 0
    last_sent: dict[str, Any] = field(default_factory=dict)


def _daily(ts: datetime, peak_hour: float = 15.0) -> float:
    """Return a value in [-1, 1] following the hour of day, highest at ``peak_hour``."""
    seconds = ts.hour * 3600 + ts.minute * 60 + ts.second
    return math.cos(2 * math.pi * (seconds - peak_hour * 3600) / DAY_S)


def _spike(rng: random.Random, value: float, factor: float) -> float:
    return value * factor if rng.random() < SPIKE_PROBABILITY else value


def _environment(state: DeviceState, ts: datetime, rng: random.Random) -> dict[str, Any]:
    temperature = 21 + 3 * _daily(ts) + rng.gauss(0, 0.3) + state.index % 5 * 0.5
    return {
        "data": {
            "temperature": round(_spike(rng, temperature, 2.5), 2),
            "humidity": round(55 - 10 * _daily(ts) + rng.gauss(0, 1.5), 1),
            "pressure": round(1013 + rng.gauss(0, 0.8), 2),
        },
        "metadata": {"battery_level": max(0, 100 - state.seq // 1000), "signal_strength": rng.randint(-80, -40)},
        "type": "sensor",
        "timestamp": ts.isoformat(),
    }


def _energy(state: DeviceState, ts: datetime, rng: random.Random) -> dict[str, Any]:
    # A heater: on in the cold hours, off otherwise; devices send only the properties that changed.
    heating = _daily(ts, peak_hour=4.0) > 0.2 or rng.random() < 0.05
    power = round(_spike(rng, 2000 + rng.gauss(0, 50), 1.8), 0) if heating else 0.0
    interior = round(19.5 + (1.0 if heating else -0.5) + rng.gauss(0, 0.2), 1)
    stamp = int(ts.timestamp() * 1000)
    current = {"instant_power": power, "temp_interior": interior}
    changed = {k: v for k, v in current.items() if state.last_sent.get(k) != v} or {"temp_interior": interior}
    state.last_sent.update(changed)
    return {
        "bizCode": "devicePropertyMessage",
        "ts": stamp,
        "bizData": {
            "devId": state.device_id,
            "productId": "sim-heater",
            "dataId": f"{state.device_id}-{state.seq}",
            "properties": [
                {"code": code, "dpId": i + 1, "time": stamp, "value": value}
                for i, (code, value) in enumerate(changed.items())
            ],
        },
    }


def _gym(state: DeviceState, ts: datetime, rng: random.Random) -> dict[str, Any]:
    return {
        "machine_id": state.index,
        "timestamp": ts.isoformat(),
        "acceleration_x": round(rng.gauss(1.0, 0.4), 3),
        "acceleration_y": round(rng.gauss(0.5, 0.2), 3),
        "acceleration_z": round(_spike(rng, rng.gauss(-9.81, 0.1), 1.5), 3),
        "repetitions": rng.randint(5, 15),
        "series_time": round(rng.uniform(20, 45), 1),
        "rest_time": round(rng.uniform(30, 90), 1),
    }


def _meter(state: DeviceState, ts: datetime, rng: random.Random) -> dict[str, Any]:
    load = 0.6 + 0.4 * _daily(ts, peak_hour=19.0)
    return {
        "ts": int(ts.timestamp() * 1000),
        "values": {
            "voltages": [round(230 + rng.gauss(0, 1.5), 1) for _ in range(3)],
            "currents": [round(_spike(rng, 10 * load + rng.gauss(0, 0.5), 3.0), 2) for _ in range(3)],
        },
    }


PROFILES: dict[str, Callable[[DeviceState, datetime, random.Random], dict[str, Any]]] = {
    "environment": _environment,
    "energy": _energy,
    "gym": _gym,
    "meter": _meter,
}
DEVICE_TYPES = {"environment": "temperature_sensor", "energy": "heater", "gym": "gym_machine", "meter": "meter"}


def make_message(profile: str, state: DeviceState, ts: datetime, rng: random.Random) -> dict[str, Any]:
    """Return the next message of a simulated device, with a msg_id so that retries are harmless."""
    body = PROFILES[profile](state, ts, rng)
    body.setdefault("msg_id", f"{state.device_id}-{state.seq}")
    state.seq += 1
    return body
