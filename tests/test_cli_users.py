"""`telemetra user`, run as an operator runs it (a subprocess per call)."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def _cli(*args: str, env: dict[str, str], check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "telemetra", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        input=input,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_user_commands(database_url) -> None:
    env = {"TELEMETRA_DATABASE_URL": database_url}
    _cli("tenant", "create", "acme", env=env)
    made = json.loads(
        _cli("user", "create", "Ana@Example.com", "--tenant", "acme", "--role", "operator", "--json", env=env).stdout
    )
    assert made["user"]["email"] == "ana@example.com" and made["user"]["role"] == "operator"
    assert len(made["password"]) >= 16
    human = _cli("user", "create", "bo@example.com", "--tenant", "acme", env=env).stdout
    assert "one-time password (shown once):" in human
    chosen = _cli(
        "user",
        "create",
        "cy@example.com",
        "--tenant",
        "acme",
        "--password-stdin",
        "--json",
        env=env,
        input="cy's long password\n",
    )
    assert json.loads(chosen.stdout)["password"] is None
    root = json.loads(_cli("user", "create", "root@example.com", "--platform-admin", "--json", env=env).stdout)
    assert root["user"]["platform_admin"] is True and root["user"]["tenant_id"] is None

    listed = json.loads(_cli("user", "list", "--tenant", "acme", "--json", env=env).stdout)
    assert [u["email"] for u in listed] == ["ana@example.com", "bo@example.com", "cy@example.com"]
    assert [u["email"] for u in json.loads(_cli("user", "list", "--json", env=env).stdout)] == ["root@example.com"]
    assert made["password"] not in _cli("user", "list", "--tenant", "acme", env=env).stdout

    assert json.loads(_cli("user", "set-role", "ana@example.com", "admin", "--json", env=env).stdout)["role"] == "admin"
    assert json.loads(_cli("user", "disable", "bo@example.com", "--json", env=env).stdout)["disabled"] is True
    assert (
        json.loads(_cli("user", "disable", "bo@example.com", "--enable", "--json", env=env).stdout)["disabled"] is False
    )
    reset = json.loads(_cli("user", "reset-password", "ana@example.com", "--json", env=env).stdout)
    assert reset["password"] != made["password"]


def test_user_command_errors_are_one_clean_line(database_url) -> None:
    env = {"TELEMETRA_DATABASE_URL": database_url}
    _cli("tenant", "create", "acme", env=env)
    neither = _cli("user", "create", "a@example.com", env=env, check=False)
    assert neither.returncode == 2 and "--platform-admin" in neither.stderr
    for args in (
        ("user", "create", "a@example.com", "--tenant", "acme", "--role", "root"),
        ("user", "create", "not-an-address", "--tenant", "acme"),
        ("user", "create", "a@example.com", "--tenant", "nobody"),
        ("user", "set-role", "nobody@example.com", "viewer"),
        ("user", "reset-password", "nobody@example.com"),
    ):
        result = _cli(*args, env=env, check=False)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1, result.stderr
    _cli("user", "create", "a@example.com", "--tenant", "acme", env=env)
    dup = _cli("user", "create", "A@example.com", "--tenant", "acme", env=env, check=False)
    assert dup.returncode == 1 and "already exists" in dup.stderr
