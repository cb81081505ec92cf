"""PahoAsyncio on a Mosquitto of our own: an idle connection is kept alive, and close() ends it cleanly."""

from __future__ import annotations

import asyncio

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from telemetra.ingest.sources.paho_asyncio import PahoAsyncio
from tests.brokers import start_mosquitto

KEEPALIVE_S = 2  # Mosquitto drops a client it hears nothing from for 1.5 keepalives


async def test_an_idle_connection_is_kept_alive_and_closed_cleanly(tmp_path) -> None:
    broker = start_mosquitto(tmp_path)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="idle-driver", protocol=paho.MQTTv5)
    connected = asyncio.Event()
    disconnects: list[paho.ReasonCode] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: connected.set()
    client.on_disconnect = lambda _c, _u, _f, reason, _p: disconnects.append(reason)
    driver = PahoAsyncio(client)
    try:
        await driver.connect("127.0.0.1", broker.port, KEEPALIVE_S)
        await asyncio.wait_for(connected.wait(), 5)
        # Silent for longer than the broker waits: only the driver's keepalive pings hold the connection.
        # (Mosquitto checks keepalives every few seconds: without pings it dropped this client after 6 s.)
        await asyncio.sleep(4 * KEEPALIVE_S)
        assert disconnects == []
        await driver.close()
        assert len(disconnects) == 1 and not disconnects[0].is_failure  # our DISCONNECT, sent and done
        assert client.socket() is None
    finally:
        broker.stop()

    log = broker.log.read_text()
    assert "Client idle-driver disconnected." in log and "exceeded timeout" not in log, log
