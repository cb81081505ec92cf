"""The telemetra command, run as a user runs it (a subprocess per call)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx

from telemetra.settings import Settings
from tests.servers import Server


def _cli(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "telemetra", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_tenant_device_and_key_commands(database_url) -> None:
    env = {"TELEMETRA_DATABASE_URL": database_url}
    created = json.loads(_cli("tenant", "create", "acme", "--json", env=env).stdout)
    assert created["tenant"]["name"] == "acme" and created["api_key"].startswith("tlmt_")
    human = _cli("tenant", "list", env=env).stdout
    assert "acme" in human and created["api_key"] not in human
    device = json.loads(_cli("device", "create", "--tenant", "acme", "--id", "raspberry1", "--json", env=env).stdout)
    assert device["device"]["id"] == "raspberry1" and device["api_key"].startswith("tlmd_")
    listed = json.loads(_cli("device", "list", "--json", env=env).stdout)
    assert [d["id"] for d in listed] == ["raspberry1"]
    rotated = json.loads(_cli("key", "rotate", "--device", "raspberry1", "--json", env=env).stdout)
    assert rotated["api_key"] not in (device["api_key"],)
    keys = json.loads(_cli("key", "list", "--tenant", "acme", "--json", env=env).stdout)
    device_keys = [k for k in keys if k["kind"] == "device"]
    assert [k["revoked"] for k in device_keys] == [True, False]
    graceful = json.loads(_cli("key", "rotate", "--device", "raspberry1", "--grace", "3600", "--json", env=env).stdout)
    assert graceful["grace_s"] == 3600 and graceful["api_key"] != rotated["api_key"]
    keys = json.loads(_cli("key", "list", "--tenant", "acme", "--json", env=env).stdout)
    assert [k["revoked"] for k in keys if k["kind"] == "device"] == [True, False, False]  # the old one still works
    ingest = json.loads(_cli("key", "create", "--tenant", "acme", "--scope", "ingest", "--json", env=env).stdout)
    _cli("key", "revoke", "--tenant", "acme", "--key-id", str(ingest["key_id"]), env=env)
    keys = json.loads(_cli("key", "list", "--tenant", "1", "--json", env=env).stdout)
    assert [k["revoked"] for k in keys if k["id"] == ingest["key_id"]] == [True]


def test_cli_errors_are_one_clean_line(database_url) -> None:
    env = {"TELEMETRA_DATABASE_URL": database_url}
    missing = _cli("device", "create", "--tenant", "nobody", env=env, check=False)
    assert missing.returncode == 1 and "No tenant 'nobody'" in missing.stderr and "Traceback" not in missing.stderr
    _cli("tenant", "create", "acme", env=env)
    dup = _cli("tenant", "create", "acme", env=env, check=False)
    assert dup.returncode == 1 and "already exists" in dup.stderr
    bad = _cli("migrate", env={**env, "TELEMETRA_LOG_LEVEL": "LOUD"}, check=False)
    assert bad.returncode == 2 and "TELEMETRA_LOG_LEVEL" in bad.stderr


def test_migrate_command(tmp_path) -> None:
    env = {"TELEMETRA_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    assert "up to date" in _cli("migrate", env=env).stdout
    assert (tmp_path / "x.db").exists()


async def test_retention_and_rollup_rebuild_commands(database_url, store) -> None:
    env = {"TELEMETRA_DATABASE_URL": database_url}
    _cli("tenant", "create", "acme", env=env)
    assert json.loads(_cli("tenant", "retention", "acme", "90", "--json", env=env).stdout) == {
        "tenant": 1,
        "retention_days": 90,
    }
    assert (await store.get_tenant(1)).retention_days == 90
    _cli("tenant", "retention", "acme", "forever", env=env)
    assert (await store.get_tenant(1)).retention_days is None
    bad = _cli("tenant", "retention", "acme", "0", env=env, check=False)
    assert bad.returncode == 2 and "DAYS" in bad.stderr

    from datetime import datetime, timezone

    from telemetra.domain.models import Point, TelemetryMessage

    device = json.loads(_cli("device", "create", "--tenant", "acme", "--id", "m1", "--json", env=env).stdout)
    ts = datetime(2026, 11, 2, 10, 15, tzinfo=timezone.utc)
    pk = (await store.get_device(device["device"]["id"])).pk
    await store.write_telemetry(
        [
            TelemetryMessage(
                device_pk=pk,
                ts=ts,
                data={},
                metadata={},
                type="sensor",
                points=[Point("instant_power", ts, 100.0), Point("t", ts, 2.0)],
            )
        ],
        ts,
    )
    rebuilt = json.loads(_cli("rollup", "rebuild", "--since", "2026-11-01", "--json", env=env).stdout)
    assert rebuilt == {"statistics_rows": 2, "energy_rows": 0}  # one sample: its step is still open
    assert _cli("rollup", "rebuild", "--since", "soon", env=env, check=False).returncode == 2


def test_long_running_commands_tune_the_garbage_collector() -> None:
    """serve and worker freeze what exists at start and collect only after 500,000 net allocations, not every 700
    (rule evaluation took twice as long with the default); in a process of its own, not this one."""
    code = (
        "import gc; from telemetra.gc_tuning import ALLOCATIONS_PER_COLLECTION, tune_gc; tune_gc(); "
        "print(gc.get_threshold()[0] == ALLOCATIONS_PER_COLLECTION, gc.get_freeze_count() > 1000)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True"]
    # Above what a full ingest queue keeps alive (about ten objects a message): batches in flight must not
    # trip a collection each (see gc_tuning).
    from telemetra.gc_tuning import ALLOCATIONS_PER_COLLECTION

    assert ALLOCATIONS_PER_COLLECTION > 10 * Settings(_env_file=None).ingest_max_queue_messages


def test_device_delete_command(database_url) -> None:
    env = {"TELEMETRA_DATABASE_URL": database_url}
    _cli("tenant", "create", "acme", env=env)
    _cli("tenant", "create", "other", env=env)
    _cli("device", "create", "--tenant", "acme", "--id", "pi1", env=env)
    refused = _cli("device", "delete", "pi1", "--tenant", "other", "--yes", env=env, check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    unconfirmed = _cli("device", "delete", "pi1", env=env, check=False)  # no terminal to say yes: nothing happens
    assert unconfirmed.returncode == 1
    assert [d["id"] for d in json.loads(_cli("device", "list", "--json", env=env).stdout)] == ["pi1"]
    deleted = json.loads(_cli("device", "delete", "pi1", "--tenant", "acme", "--yes", "--json", env=env).stdout)
    assert deleted["deleted"]["id"] == "pi1"
    assert json.loads(_cli("device", "list", "--json", env=env).stdout) == []
    missing = _cli("device", "delete", "pi1", "--yes", env=env, check=False)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr


def test_key_create_admin_prints_a_working_admin_key_alone(database_url) -> None:
    env = {"TELEMETRA_DATABASE_URL": database_url}
    printed = _cli("key", "create-admin", "--name", "docs", env=env).stdout
    key = printed.strip()
    assert printed == key + "\n" and key.startswith("tlma_")  # the key alone: ADMIN=$(telemetra key create-admin)
    as_json = json.loads(_cli("key", "create-admin", "--name", "ops", "--json", env=env).stdout)
    assert as_json["name"] == "ops" and as_json["api_key"].startswith("tlma_") and as_json["api_key"] != key
    reserved = _cli("key", "create-admin", "--name", "generated", env=env, check=False)
    assert reserved.returncode == 2 and "generated" in reserved.stderr

    server = Server(database_url)
    try:
        assert httpx.get(server.url + "/api/v1/admin/tenants", headers={"X-API-Key": key}).status_code == 200
        rotated = _cli("key", "rotate", "--admin", "--json", env=env)  # replaces every admin key but a configured one
        assert json.loads(rotated.stdout)["api_key"].startswith("tlma_")
        # Another process's change reaches the server's key cache within about a second (the epoch it polls).
        deadline = time.monotonic() + 10
        while httpx.get(server.url + "/api/v1/admin/tenants", headers={"X-API-Key": key}).status_code != 401:
            assert time.monotonic() < deadline, "the revoked admin key still opens the admin routes"
            time.sleep(0.2)
    finally:
        server.stop()
