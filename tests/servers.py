"""`telemetra serve` as a real process for tests that go over the wire."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.answers import serving
from tests.brokers import free_port


class Server:
    """`telemetra serve` in a process of its own, on a free port; stop() ends it by its PID."""

    def __init__(
        self,
        database_url: str,
        *extra: str,
        env: dict[str, str] | None = None,
        ca_file: str | None = None,
        data_dir: str | None = None,
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()  # a port of its own, or the one a stopped server had (a restart)
        self.database_url = database_url
        # With a CA to trust, the server is expected to answer HTTPS (it was given --tls-cert/--tls-key).
        self.url = f"{'https' if ca_file else 'http'}://127.0.0.1:{self.port}"
        verify = ssl.create_default_context(cafile=ca_file) if ca_file else True
        base = {k: v for k, v in os.environ.items() if not k.startswith("TELEMETRA_")}
        # Keys the server creates go to this file (its output is not a terminal), never into the project.
        self._keys_dir: tempfile.TemporaryDirectory | None = tempfile.TemporaryDirectory()
        self._keys_text = ""
        self.keys_file = Path(self._keys_dir.name) / "telemetra.keys"
        self.data_dir = data_dir or self._keys_dir.name
        env = {
            **base,
            "TELEMETRA_DATABASE_URL": database_url,
            "TELEMETRA_KEYS_FILE": str(self.keys_file),
            "TELEMETRA_DATA_DIR": self.data_dir,  # a demo's files: never the user's data folder
            **(env or {}),
        }
        # Files, not pipes: a server that logs a lot must never block on a pipe nobody reads yet.
        self._out, self._err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
        self.stdout = self.stderr = ""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "telemetra", "serve", "--port", str(self.port), *extra],
            env=env,
            stdout=self._out,
            stderr=self._err,
            text=True,
        )
        serving(self.url, True)  # its answers are checked against the OpenAPI document (tests/answers.py)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=1, verify=verify).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
            if self.proc.poll() is not None:
                break
        self.stop()
        raise AssertionError(f"server did not start: {self.stderr}")

    def demo(self) -> dict:
        """The demo's key and sign-in as `serve --demo` keeps them (beside a SQLite file, else in the data folder)."""
        import json

        if self.database_url.startswith("sqlite:///"):
            path = Path(self.database_url.removeprefix("sqlite:///") + ".demo")
        else:
            path = Path(self.data_dir) / "demo.json"
        return json.loads(path.read_text())

    def keys(self) -> str:
        """What the server wrote to its keys file (empty when it wrote nothing); kept after stop()."""
        if self._keys_dir is not None and self.keys_file.exists():
            self._keys_text = self.keys_file.read_text()
        return self._keys_text

    def stop(self) -> None:
        serving(self.url, False)
        if self._out.closed:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for handle in (self._out, self._err):
            handle.seek(0)
        self.stdout, self.stderr = self._out.read(), self._err.read()
        self._out.close()
        self._err.close()
        self.keys()
        self._keys_dir.cleanup()
        self._keys_dir = None


@pytest.fixture
def server_factory(database_url, tmp_path) -> Iterator:
    started: list[Server] = []
    data_dir = str(tmp_path / "data")  # the servers of one test share a data folder, as on one machine

    def _start(*extra: str, env: dict[str, str] | None = None) -> Server:
        server = Server(database_url, *extra, env=env, data_dir=data_dir)
        started.append(server)
        return server

    yield _start
    for server in started:
        server.stop()
