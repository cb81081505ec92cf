"""A device's first request after a start costs one indexed lookup (its key and its device together) and no
log line of its own; its next requests cost none. Presence changes are summarised, one INFO line a check."""

from __future__ import annotations

import asyncio
import inspect
import logging

import pytest

from telemetra.registry.presence import MAX_IDS_NAMED
from telemetra.settings import Settings
from tests.conftest import TEST_ADMIN_KEY

# The tasks that work for a request: the request's own (the test's: the ASGI transport runs the app in it) and
# the ingest writer's commit. Every other task is a timer or a consumer of the process (presence, rules,
# sealing, activity, ...), which may ask the store anything while a test runs, whatever the requests do.
REQUEST_WORKERS = frozenset({"ingest-commit"})


# Loggers of the timers' periodic summaries, which may write a line while a request runs.
TIMER_LOGGERS = frozenset({"telemetra.registry.presence", "telemetra.ingest.pipeline"})


@pytest.fixture
def settings(database_url: str) -> Settings:
    # No presence check of its own while a test runs: the test runs the one it looks at.
    return Settings(
        database_url=database_url,
        admin_key=TEST_ADMIN_KEY,
        _env_file=None,
        activity_flush_interval_s=3600,
        presence_check_s=3600,
    )


def _count_store_calls(store, monkeypatch) -> list[tuple[asyncio.Task | None, str]]:
    """Record the task and the name of every public coroutine method of the (real) store called from now on,
    and of ``_query``, through which every read of either backend runs (one call: one statement)."""
    calls: list[tuple[asyncio.Task | None, str]] = []
    for name, method in inspect.getmembers(store, inspect.iscoroutinefunction):
        if name.startswith("_") and name != "_query":
            continue

        def counted(*args, _name=name, _method=method, **kwargs):
            calls.append((asyncio.current_task(), _name))
            return _method(*args, **kwargs)

        monkeypatch.setattr(store, name, counted)
    return calls


def _on_request(calls: list[tuple[asyncio.Task | None, str]]) -> list[str]:
    """The calls made for the test's requests: from the test's own task or a commit of the ingest writer."""
    here = asyncio.current_task()
    return [name for task, name in calls if task is here or (task is not None and task.get_name() in REQUEST_WORKERS)]


async def _send(client, device: dict, value: float) -> None:
    resp = await client.post("/api/v1/devices/telemetry", headers=device["headers"], json={"data": {"t": value}})
    assert resp.status_code == 201, resp.text


async def test_a_devices_first_request_after_a_start_is_one_lookup_and_no_log_line(
    app, client, store, make_tenant, make_device, monkeypatch, caplog
) -> None:
    tenant = await make_tenant()
    first, second = await make_device(tenant), await make_device(tenant)
    # Registered through the API, neither key is in memory yet: as after a start.
    await _send(client, first, 1)  # the process's first request warms what is not per device
    calls = _count_store_calls(store, monkeypatch)

    caplog.clear()  # the registrations' own lines
    with caplog.at_level(logging.DEBUG, logger="telemetra"):
        await _send(client, second, 1)
    on_request = _on_request(calls)
    assert on_request == ["find_credentials", "_query", "write_telemetry"]  # one statement, then the commit
    lines = [r for r in caplog.records if r.name.startswith("telemetra") and r.name not in TIMER_LOGGERS]
    assert not [r for r in lines if r.levelno >= logging.INFO]

    calls.clear()
    await _send(client, second, 2)
    await _send(client, first, 2)
    assert _on_request(calls) == ["write_telemetry", "write_telemetry"]


async def test_an_unknown_key_is_one_lookup_and_cached_as_nothing(client, store, monkeypatch) -> None:
    calls = _count_store_calls(store, monkeypatch)
    for _ in range(2):
        resp = await client.post("/api/v1/devices/telemetry", headers={"X-API-Key": "tlma_nope"}, json={"data": {}})
        assert resp.status_code == 401
    # Unknown keys are not cached (guessing cannot fill memory): each costs its one lookup.
    assert _on_request(calls) == ["find_credentials", "_query"] * 2


async def test_presence_changes_are_one_info_line_a_check(app, client, make_tenant, make_device, caplog) -> None:
    tenant = await make_tenant()
    devices = [await make_device(tenant) for _ in range(MAX_IDS_NAMED + 3)]
    for i, device in enumerate(devices):
        await _send(client, device, i)
    await app.state.services.activity.flush()  # their last-seen times reach the database

    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="telemetra.registry.presence"):
        changes = await app.state.services.presence.check()
    ours = {d["id"] for d in devices}
    assert {c.device.id for c in changes if c.online} >= ours
    ours_logged = [r for r in caplog.records if r.name == "telemetra.registry.presence"]
    info = [r.getMessage() for r in ours_logged if r.levelno == logging.INFO]
    assert len(info) == 1 and f"{len(changes)} online" in info[0] and "more" in info[0]
    debug = [r.getMessage() for r in ours_logged if r.levelno == logging.DEBUG]
    assert {d["id"] for d in devices} <= {line.split()[1] for line in debug}  # each change, at DEBUG
