"""The device client's settings, from a TOML file (`telemetra device run --config device.toml`) or in code."""

from __future__ import annotations

import importlib
import importlib.util
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

__all__ = ["DeviceConfig", "load_config", "load_function"]


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    device_id: str
    url: str = ""  # Telemetra's HTTP address: sending over HTTP, heartbeats, and the password login
    key: str | None = None  # the device key (X-API-Key; also the MQTT password)
    password: str | None = None  # or a password: seed 003's POST /auth/login gives a token, renewed before expiry
    transport: str = "http"  # http or mqtt
    period_s: float = 10.0  # how often the reader is called
    reader: str = "telemetra.client.readers:cpu_temperature"  # module:function or /path/file.py:function
    command_handler: str | None = None  # (name, params) -> result
    desired_handler: str | None = None  # (delta) -> the state now reported, or None
    buffer_file: str = "telemetra-outbox.sqlite"
    buffer_max: int = 100_000
    batch_max: int = 500
    heartbeat_s: float = 30.0  # HTTP: how often commands and desired state are polled
    renew_before_s: float = 60.0  # renew a login token this long before it expires
    timeout_s: float = 10.0
    max_backoff_s: float = 60.0
    ca_file: str | None = None  # a CA to trust for HTTPS (else the system's)
    mqtt_url: str | None = None  # mqtt://host:1883 or mqtts://host:8883
    mqtt_ca_file: str | None = None
    mqtt_cert_file: str | None = None
    mqtt_key_file: str | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.transport not in ("http", "mqtt"):
            problems.append("transport must be 'http' or 'mqtt'")
        if bool(self.key) == bool(self.password):
            problems.append("give the device's key or its password (one of them)")
        if self.transport == "http" and not self.url:
            problems.append("url (Telemetra's HTTP address) is needed to send over HTTP")
        if self.password and not self.url:
            problems.append("url is needed to log in with a password")
        if self.transport == "mqtt" and not (self.mqtt_url and self.key):
            problems.append("MQTT needs mqtt_url and the device key (the broker password)")
        if self.period_s <= 0 or self.heartbeat_s <= 0 or self.batch_max < 1 or self.buffer_max < 1:
            problems.append("period_s and heartbeat_s must be positive, batch_max and buffer_max at least 1")
        if problems:
            raise ValueError("; ".join(problems))


def load_config(path: str | Path) -> DeviceConfig:
    """Read a TOML file: top-level keys named as DeviceConfig's fields, and an optional [mqtt] table
    (url, ca_file, cert_file, key_file)."""
    with open(path, "rb") as handle:
        doc = tomllib.load(handle)
    mqtt = doc.pop("mqtt", {}) or {}
    for name in ("url", "ca_file", "cert_file", "key_file"):
        if name in mqtt:
            doc[f"mqtt_{name}"] = mqtt[name]
    known = {f.name for f in fields(DeviceConfig)}
    unknown = sorted(set(doc) - known)
    if unknown:  # a misspelt setting would otherwise be a default silently used
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}; see DeviceConfig in telemetra/client/config.py")
    if "device_id" not in doc:
        raise ValueError("device_id is missing")
    try:
        return DeviceConfig(**doc)
    except TypeError as exc:
        raise ValueError(str(exc)) from None


def load_function(ref: str, base: Path | None = None) -> Callable[..., Any]:
    """``package.module:function``, or ``path/to/file.py:function`` (relative to ``base``)."""
    target, _, name = ref.rpartition(":")
    if not target or not name:
        raise ValueError(f"'{ref}' is not module:function or file.py:function")
    if target.endswith(".py"):
        path = Path(target) if base is None else base / target
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise ValueError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    function = getattr(module, name, None)
    if not callable(function):
        raise ValueError(f"'{ref}': no function {name}")
    return function
