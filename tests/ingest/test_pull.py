"""`telemetra pull` and `serve` with TELEMETRA_PULL_URL against a stand-in upstream (tests/upstream_standin.py),
all real processes on loopback: readings land once, across polls and restarts; an upstream answering 500 and
then garbage breaks nothing, is counted and logged once per state, and later readings land."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from telemetra.store import Store
from tests.brokers import free_port, wait_for_port

TWO_CLIENTS = "acme:acme-t1:temperature_sensor,acme:acme-h1:humidity_sensor,globex:globex-a1:activity_tracker"
POLL = "0.2s"


class StandinProcess:
    def __init__(self, objects: str, tick_s: float = 1.0, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.upstream_standin", "--port", str(self.port), "--tick", str(tick_s)]
            + ["--objects", objects]
        )
        wait_for_port(self.port)

    def mode(self, mode: str) -> None:
        httpx.post(self.url + "/_mode", content=mode, timeout=5).raise_for_status()

    def served(self) -> dict[tuple[str, str], dict[str, Any]]:
        return {(i, ts): m for i, ts, m in httpx.get(self.url + "/_served", timeout=5).json()}

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


class Puller:
    """`telemetra pull --from URL --every 0.2s` as a process; stop() sends SIGTERM by its PID."""

    def __init__(self, database_url: str, upstream: str, *extra: str, env: dict[str, str] | None = None) -> None:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("TELEMETRA_")}, **(env or {})}
        env["TELEMETRA_DATABASE_URL"] = database_url
        self._err = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "telemetra", "pull", "--from", upstream, "--every", POLL, *extra],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self._err,
            text=True,
        )
        self.stderr = ""

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=20)
        self._err.seek(0)
        self.stderr = self._err.read()
        self._err.close()
        return self.stderr


@pytest.fixture
def standin() -> Iterator[StandinProcess]:
    upstream = StandinProcess(TWO_CLIENTS)
    yield upstream
    upstream.stop()


async def _stored(store: Store, object_id: str) -> list[tuple[datetime, dict[str, Any]]]:
    device = await store.get_device(object_id)
    if device is None:
        return []
    messages, _ = await store.list_messages(device_pk=device.pk, limit=1000)
    return sorted((m.ts, m.data) for m in messages)


def _as_utc(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp).replace(tzinfo=timezone.utc)


async def _wait_for(check: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


async def _assert_each_served_reading_stored_once(store: Store, upstream: StandinProcess) -> int:
    served = upstream.served()
    total = 0
    for object_id in ("acme-t1", "acme-h1", "globex-a1"):
        mine = sorted(
            (_as_utc(ts), {k: v for k, v in m.items() if v is not None})
            for (i, ts), m in served.items()
            if i == object_id
        )
        stored = await _stored(store, object_id)
        assert [ts for ts, _ in stored] == [ts for ts, _ in mine], object_id  # each once, none missing
        assert [d for _, d in stored] == [d for _, d in mine], object_id  # the upstream's values
        total += len(stored)
    return total


async def test_two_clients_land_once_and_a_restart_doubles_nothing(
    database_url: str, store: Store, standin: StandinProcess
) -> None:
    puller = Puller(database_url, standin.url)
    try:

        async def three_ticks() -> bool:
            return len(await _stored(store, "globex-a1")) >= 3

        await _wait_for(three_ticks)  # ~5 polls a tick: each reading is polled several times
        standin.mode("frozen")  # the readings stop changing: what is served is all there is
        time.sleep(1.0)
    finally:
        first_log = puller.stop()
    total = await _assert_each_served_reading_stored_once(store, standin)
    assert total >= 9
    for object_id, client in (("acme-t1", "acme"), ("acme-h1", "acme"), ("globex-a1", "globex")):
        device = await store.get_device(object_id)
        tenant = await store.get_tenant(device.tenant_id)
        assert tenant.name == client
    assert "Traceback" not in first_log

    # A new puller polls the same frozen readings again: none is stored twice.
    again = Puller(database_url, standin.url)
    time.sleep(2.0)
    standin.mode("ok")  # and new ones land

    async def one_more_tick() -> bool:
        return len(await _stored(store, "globex-a1")) > total // 3 + 1

    try:
        await _wait_for(one_more_tick)
        standin.mode("frozen")
        time.sleep(1.0)
    finally:
        second_log = again.stop()
    assert await _assert_each_served_reading_stored_once(store, standin) > total
    assert "Traceback" not in second_log


async def test_only_the_named_clients(database_url: str, store: Store, standin: StandinProcess) -> None:
    puller = Puller(database_url, standin.url, "--client", "globex", "--client", "nobody")
    try:

        async def landed() -> bool:
            return len(await _stored(store, "globex-a1")) >= 1

        await _wait_for(landed)
    finally:
        puller.stop()
    assert await store.get_device("acme-t1") is None


async def test_an_upstream_slow_then_down_then_back(database_url: str, store: Store) -> None:
    upstream = StandinProcess(TWO_CLIENTS)
    upstream.mode("slow")  # every answer takes 30 s; the puller gives up after 0.5 s
    puller = Puller(database_url, upstream.url, env={"TELEMETRA_PULL_TIMEOUT_S": "0.5"})
    try:
        time.sleep(3.0)
        upstream.stop()  # now nothing listens: down
        time.sleep(3.0)
        upstream = StandinProcess(TWO_CLIENTS, port=upstream.port)

        async def landed() -> bool:
            return len(await _stored(store, "acme-t1")) >= 1

        await _wait_for(landed)
        time.sleep(1.0)  # the poll that stored it ends, and says so
    finally:
        log = puller.stop()
        upstream.stop()
    assert log.count(": slow (") == 1, log
    assert log.count(": down (") == 1, log
    assert log.count("answers (") == 1, log  # first answered after the outage, said once
    assert "Traceback" not in log


def _metric(text: str, name: str, label: str) -> float:
    for line in text.splitlines():
        if line.startswith(name) and label in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_serve_pulls_through_an_upstream_answering_500_then_garbage(
    server_factory, store: Store, standin: StandinProcess
) -> None:
    server = server_factory(env={"TELEMETRA_PULL_URL": standin.url, "TELEMETRA_PULL_EVERY_S": "0.2"})

    async def landed() -> bool:
        return len(await _stored(store, "acme-t1")) >= 1

    await _wait_for(landed)
    standin.mode("500")
    time.sleep(2.0)
    assert httpx.get(server.url + "/health", timeout=5).status_code == 200  # nothing local breaks
    standin.mode("garbage")
    time.sleep(2.0)
    before = len(await _stored(store, "acme-t1"))
    standin.mode("ok")

    async def later_points() -> bool:
        return len(await _stored(store, "acme-t1")) > before

    await _wait_for(later_points)  # after the back-off (at most 8 periods here)
    metrics = httpx.get(server.url + "/metrics", timeout=5).text
    assert _metric(metrics, "telemetra_pull_polls_total", 'outcome="http_error"') >= 2
    assert _metric(metrics, "telemetra_pull_polls_total", 'outcome="garbage"') >= 1
    assert _metric(metrics, "telemetra_pull_upstream_up", "") == 1.0 or "telemetra_pull_upstream_up 1.0" in metrics
    assert _metric(metrics, "telemetra_ingest_messages_total", 'source="pull"') >= 2
    server.stop()
    log = server.stderr
    # Once per change of state, not once per poll: ok -> http_error -> garbage -> ok.
    assert log.count("http_error") == 1, log
    assert log.count(": garbage (") == 1, log
    assert log.count("answers (") >= 1 and "again" in log
    assert "Traceback" not in log


def test_hostile_listings_keep_only_usable_objects() -> None:
    from telemetra.ingest.sources.pull_upstream import UpstreamError, _objects, message_id

    listing = [
        {"id": "ok-1", "client": "acme", "type": "temperature_sensor"},
        {"id": "nul\x00id", "client": "acme"},
        {"id": "../../admin", "client": "acme"},
        {"id": "ok-2", "client": "ac\x00me"},
        {"id": "ok-3", "client": "x" * 101},
        {"id": 7, "client": "acme"},
        {"id": "ok-4", "client": "globex", "type": {"deep": [1]}},
        "not an object",
        None,
    ]
    found = _objects(listing, "/iot_objects")
    assert [(o.id, o.client, o.type) for o in found] == [
        ("ok-1", "acme", "temperature_sensor"),
        ("ok-4", "globex", "sensor"),
    ]
    for garbage in ({"iot_objects": []}, "text", 3, None):
        with pytest.raises(UpstreamError) as caught:
            _objects(garbage, "/iot_objects")
        assert caught.value.kind == "garbage"
    assert message_id("d1", "2026-01-01T00:00:00") == "d1@2026-01-01T00:00:00"
    assert len(message_id("d" * 128, "2026-01-01T00:00:00")) <= 128


async def test_hostile_answers_are_garbage_and_bounded() -> None:
    from telemetra.ingest.sources.pull_upstream import Upstream, UpstreamError

    upstream_process = StandinProcess(TWO_CLIENTS)
    upstream = Upstream(upstream_process.url, timeout_s=5, concurrency=2)
    try:
        for mode in ("huge", "deep", "nan", "garbage"):
            upstream_process.mode(mode)
            with pytest.raises(UpstreamError) as caught:
                await upstream.objects([])
            assert caught.value.kind == "garbage", mode
        upstream_process.mode("nul")
        assert await upstream.objects([]) == []  # an id or client with a NUL is no object
        upstream_process.mode("ok")
        assert len(await upstream.objects([])) == 3
    finally:
        await upstream.aclose()
        upstream_process.stop()
