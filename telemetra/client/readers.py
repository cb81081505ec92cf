"""Readers to start from: the documented example reads a Raspberry Pi's CPU temperature."""

from __future__ import annotations

from pathlib import Path

__all__ = ["cpu_temperature"]

THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")


def cpu_temperature() -> dict[str, float]:
    """``{"cpu_temp": °C}`` from the kernel's thermal zone (millidegrees in the file); empty when it has none."""
    try:
        return {"cpu_temp": int(THERMAL_ZONE.read_text().strip()) / 1000}
    except (OSError, ValueError):
        return {}
