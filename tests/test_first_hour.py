"""What a new user meets in the first hour: where the data lives, what the CLI says, upkeep that happens."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import typer

from telemetra.cli import app
from telemetra.domain.timeparse import utcnow
from telemetra.store import Store
from tests.brokers import free_port
from tests.servers import Server
from tests.store.test_retention import _count, _tenant_with_device, _write


def _cli(*args: str, cwd: Path, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TELEMETRA_")}
    root = str(Path(__file__).resolve().parent.parent)
    result = subprocess.run(
        [sys.executable, "-m", "telemetra", *args],
        cwd=cwd,
        env={**base, "PYTHONPATH": root, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def _commands(group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    # Typer ships its own copy of click: groups are known by their commands, not by click's class.
    found = [prefix]
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            found += _commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


def test_every_help_shows_flags_as_flags() -> None:
    """`--json` and `--help` take no value, and the help says so (a typer release labelled them `<bool>`)."""
    from typer.testing import CliRunner

    root = typer.main.get_command(app)
    runner = CliRunner()
    commands = _commands(root)
    assert ("tenant", "list") in commands and ("retention",) in commands
    for path in commands:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.output, (path, result.output)
        assert "--help" in result.output


def test_the_default_database_does_not_depend_on_the_working_directory(tmp_path) -> None:
    data_home, here, there = tmp_path / "data", tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    env = {"XDG_DATA_HOME": str(data_home)}
    _cli("tenant", "create", "acme", cwd=here, env=env)
    listed = json.loads(_cli("tenant", "list", "--json", cwd=there, env=env).stdout)
    assert [t["name"] for t in listed] == ["acme"]
    database = data_home / "telemetra" / "telemetra.db"
    assert database.exists() and not list(here.iterdir()) and not list(there.iterdir())
    assert oct((data_home / "telemetra").stat().st_mode & 0o777) == "0o700"
    info = json.loads(_cli("info", "--json", cwd=there, env={**env, "TELEMETRA_RATE_LIMITS_ENABLED": "false"}).stdout)
    assert info["database"]["path"] == str(database) and info["database"]["exists"]
    assert info["settings"] == {"TELEMETRA_RATE_LIMITS_ENABLED": False}
    assert info["versions"]["telemetra"] and info["versions"]["python"].startswith("3.")


def test_info_never_prints_a_secret(tmp_path) -> None:
    secret = "tlma_" + "s3cr3t" * 8
    env = {"XDG_DATA_HOME": str(tmp_path), "TELEMETRA_ADMIN_KEY": secret}
    out = _cli("info", cwd=tmp_path, env=env).stdout
    assert "TELEMETRA_ADMIN_KEY=(set)" in out and secret not in out
    pg = _cli("info", cwd=tmp_path, env={**env, "TELEMETRA_DATABASE_URL": "postgresql://u:pw@db.example/t"}).stdout
    assert "postgresql://u:***@db.example/t" in pg and "pw@" not in pg


def test_a_bad_sqlite_path_is_one_clean_line(tmp_path) -> None:
    env = {"TELEMETRA_DATABASE_URL": f"sqlite:///{tmp_path / 'missing' / 'x.db'}"}
    for args in (("serve", "--demo", "--simulate", "2", "--port", str(free_port())), ("tenant", "list")):
        result = _cli(*args, cwd=tmp_path, env=env, check=False)
        assert result.returncode != 0
        assert "Traceback" not in result.stderr and "Event loop is closed" not in result.stderr, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "does not exist" in lines[0], result.stderr


async def test_retention_dry_run_says_what_it_would_delete_and_deletes_nothing(
    store: Store, database_url: str, tmp_path
) -> None:
    tenant, pk = await _tenant_with_device(store, "short")
    now = utcnow()
    await _write(store, pk, now - timedelta(days=60), now - timedelta(days=1))
    await store.set_tenant_retention(tenant, 30)
    env = {"TELEMETRA_DATABASE_URL": database_url}

    dry = json.loads(_cli("retention", "--dry-run", "--json", cwd=tmp_path, env=env).stdout)
    assert dry["dry_run"] is True and [(t["tenant"], t["points"], t["messages"]) for t in dry["tenants"]] == [
        (tenant, 1, 1)
    ]
    assert await _count(store, pk) == 2
    assert "would delete 1 points and 1 messages" in _cli("retention", "--dry-run", cwd=tmp_path, env=env).stdout

    done = json.loads(_cli("retention", "--json", cwd=tmp_path, env=env).stdout)
    assert done["rows_deleted"] == 2 and await _count(store, pk) == 1


async def test_a_server_applies_retention_when_it_starts(store: Store, database_url: str) -> None:
    """Not six hours later: a server restarted more often than that would never apply it."""
    tenant, pk = await _tenant_with_device(store, "short")
    now = utcnow()
    await _write(store, pk, now - timedelta(days=60), now - timedelta(days=1))
    await store.set_tenant_retention(tenant, 30)
    server = Server(database_url)
    try:
        deadline = time.monotonic() + 15
        while await _count(store, pk) != 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert await _count(store, pk) == 1
    finally:
        server.stop()


@pytest.mark.parametrize("target", ["clean"])
def test_no_make_target_deletes_data(target) -> None:
    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    recipe = makefile.split(f"\n{target}:", 1)[1].split("\n\n", 1)[0]
    assert ".db" not in recipe and ".keys" not in recipe and "rm -rf $(VENV)" in recipe


def _demo_key(server: Server, data_dir: Path) -> str:
    demo_files = list(data_dir.glob("*.demo")) + list(data_dir.glob("demo.json"))
    assert len(demo_files) == 1, list(data_dir.iterdir())
    assert oct(demo_files[0].stat().st_mode & 0o777) == "0o600"
    return json.loads(demo_files[0].read_text())["key"]


def _opens(server: Server, key: str) -> bool:
    import httpx

    return httpx.get(server.url + "/api/v1/devices", headers={"X-API-Key": key}, timeout=10).status_code == 200


def test_a_second_run_keeps_the_first_servers_demo_key_and_simulator(tmp_path, database_url: str) -> None:
    """A second `make run`, on the busy port or another one, never revokes the running server's demo key, and
    one database gets one simulator."""
    data_dir = tmp_path / "data"
    url = database_url if not database_url.startswith("sqlite") else f"sqlite:///{data_dir / 'telemetra.db'}"
    first = Server(url, "--demo", "--simulate", "2", data_dir=str(data_dir))
    try:
        key = _demo_key(first, data_dir)
        assert _opens(first, key)
        env = {"TELEMETRA_DATABASE_URL": url, "TELEMETRA_DATA_DIR": str(data_dir)}
        busy = _cli("serve", "--demo", "--simulate", "2", "--port", str(first.port), cwd=tmp_path, env=env, check=False)
        assert busy.returncode == 1 and "cannot listen on" in busy.stderr, busy.stderr
        assert "Traceback" not in busy.stderr and len(busy.stderr.strip().splitlines()) == 1
        assert _demo_key(first, data_dir) == key and _opens(first, key)

        second = Server(url, "--demo", "--simulate", "2", data_dir=str(data_dir))
        try:
            assert _demo_key(second, data_dir) == key and _opens(first, key) and _opens(second, key)
        finally:
            second.stop()
        assert "simulates the demo devices; this one does not" in second.stderr
    finally:
        first.stop()
    assert "simulating 2 demo devices" in first.stderr
    # The file outlives the servers: the next run reuses the key.
    password = first.demo()["password"]
    third = Server(url, "--demo", data_dir=str(data_dir))
    try:
        assert _demo_key(third, data_dir) == key and _opens(third, key)
        import httpx

        signed_in = httpx.post(
            third.url + "/api/v1/session", json={"email": "demo@localhost", "password": password}, timeout=10
        )
        assert signed_in.status_code == 200 and third.demo()["password"] == password
    finally:
        third.stop()
    assert "Telemetra on http://127.0.0.1:" in third.stdout
    assert third.stdout.index("Database:") < third.stdout.index("Telemetra on")


def test_a_variable_that_names_no_setting_is_said_not_silently_ignored(tmp_path) -> None:
    """A typo, or a setting since removed (the ingest flush interval), would otherwise change nothing without a word."""
    env = {"XDG_DATA_HOME": str(tmp_path), "TELEMETRA_INGEST_FLUSH_INTERVAL_MS": "5", "TELEMETRA_LOG_LEVL": "DEBUG"}
    result = _cli("info", cwd=tmp_path, env={**env, "TELEMETRA_SIM_KEY": "not a setting, but read by simulate"})
    warned = [line for line in result.stderr.splitlines() if "is not a setting and is ignored" in line]
    assert len(warned) == 2, result.stderr
    assert "TELEMETRA_INGEST_FLUSH_INTERVAL_MS" in warned[0] and "TELEMETRA_LOG_LEVL" in warned[1]
    assert "TELEMETRA_SIM_KEY" not in result.stderr
    quiet = _cli("info", cwd=tmp_path, env={"XDG_DATA_HOME": str(tmp_path), "TELEMETRA_LOG_LEVEL": "INFO"})
    assert "is not a setting" not in quiet.stderr
