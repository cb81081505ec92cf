"""SIGTERM always ends a worker within its stop timeout, even while it retries a batch the database keeps
failing: the batch is left unacknowledged, and the broker gives it to the next worker, which stores it.

The database refuses for real: a trigger in the test's own PostgreSQL database raises on every batch's write
(as a read-only or full database would: an error that is not about the data, so the batch is retried)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess

import asyncpg
import nats
import pytest

from tests.brokers import start_mosquitto, start_nats
from tests.ingest.test_mqtt_source import publisher, wait_until
from tests.ingest.test_worker_kill import _ge, _start_worker, _store_with_a_device

STOP_TIMEOUT_S = 2
# What SIGTERM may take beyond the stop timeout: the brokers' disconnects and the store's close.
EXIT_MARGIN_S = 10
REFUSE_WRITES = """
CREATE FUNCTION refuse_writes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'writes refused for the test'; END $$;
CREATE TRIGGER refuse_writes BEFORE INSERT ON daily_counts FOR EACH ROW EXECUTE FUNCTION refuse_writes();
"""


async def _sql(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _log_says(path, text: str):
    async def check() -> bool:
        return text in path.read_text(errors="replace")

    return check


@pytest.mark.parametrize("source", ["mqtt", "nats"])
async def test_sigterm_while_a_batch_is_retried_exits_within_the_stop_timeout(pg_database, tmp_path, source) -> None:
    broker = start_mosquitto(tmp_path) if source == "mqtt" else start_nats(tmp_path)
    broker_url = f"{source}://127.0.0.1:{broker.port}"
    settings = {
        "TELEMETRA_INGEST_STOP_TIMEOUT_S": str(STOP_TIMEOUT_S),
        "TELEMETRA_MQTT_CLIENT_ID": "stop-test",
        "TELEMETRA_NATS_ACK_WAIT_S": "2",
    }
    store, device = await _store_with_a_device(pg_database)
    log_path = tmp_path / "worker.log"
    log = open(log_path, "ab")
    await _sql(pg_database, REFUSE_WRITES)
    worker = _start_worker(pg_database, source, broker_url, log, settings)
    pub = nc = None
    try:
        await wait_until(_log_says(log_path, "worker ready"), timeout_s=30)
        body = json.dumps({"data": {"n": 1}, "msg_id": "m1"})
        if source == "mqtt":
            pub = publisher(broker.port)
            pub.publish(f"devices/{device.id}/telemetry", body, qos=1).wait_for_publish(5)
        else:
            nc = await nats.connect(broker_url)
            await nc.jetstream().publish(f"telemetry.{device.id}", body.encode())
        await wait_until(_log_says(log_path, "not committed"), timeout_s=30)  # the worker is retrying it
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(STOP_TIMEOUT_S + EXIT_MARGIN_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker did not exit after SIGTERM:\n{log_path.read_text()[-3000:]}")
        assert worker.returncode == 0, log_path.read_text()[-3000:]
        assert "worker stopped" in log_path.read_text()

        # Left unacknowledged: once the database takes writes again, the next worker stores it, once.
        await _sql(pg_database, "DROP TRIGGER refuse_writes ON daily_counts")
        worker = _start_worker(pg_database, source, broker_url, log, settings)

        async def count() -> int:
            return (await store.list_messages(device_pk=device.pk, limit=1))[1]

        await wait_until(lambda: _ge(count, 1), timeout_s=30)
        await asyncio.sleep(0.3)
        assert await count() == 1
    finally:
        if pub is not None:
            pub.loop_stop()
            pub.disconnect()
        if nc is not None:
            await nc.close()
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        log.close()
        broker.stop()
        await store.close()
