"""Telemetra: a Python-native IoT telemetry platform."""

__version__ = "0.1.0"
__all__ = ["__version__"]
