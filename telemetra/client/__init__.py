"""Telemetra's device client: what runs on the device (a Raspberry Pi with Python 3.11 will do).

It reads values through a function you write, at a period; sends them over HTTP (batching what accumulated) or
MQTT, with TLS; keeps them in a local SQLite file while the platform is unreachable and sends them, oldest
first, when it is back (each with a ``msg_id``: nothing is stored twice); receives commands and desired state
and calls your handlers. It needs httpx, and paho-mqtt for MQTT only, and nothing else of Telemetra: it
imports no other package of it (the import contract in pyproject.toml says so, and a test imports it with the
server's dependencies unavailable).

    from telemetra.client import DeviceClient, DeviceConfig
    client = DeviceClient(DeviceConfig(url="https://telemetra.example", device_id="pi-1", key="..."),
                          reader=lambda: {"cpu_temp": 48.2})
    client.run()          # until client.stop() or Ctrl-C

`telemetra device run --config device.toml` does the same from a TOML file (see docs/edge.md).
"""

from telemetra.client.buffer import Outbox
from telemetra.client.config import DeviceConfig, load_config
from telemetra.client.device import AuthenticationFailed, DeviceClient
from telemetra.client.readers import cpu_temperature

__all__ = ["DeviceClient", "DeviceConfig", "Outbox", "AuthenticationFailed", "load_config", "cpu_temperature"]
