#!/usr/bin/env python3
"""Ingest benchmark for Telemetra (a benchmark, not a test).

Starts `telemetra serve` against SQLite and PostgreSQL, drives it through each source for a fixed count of
messages, waits until every message is committed, and prints one row per run: messages/s, points/s,
p50/p99 acknowledgement latency, peak RSS, and the ratio to a bare ceiling measured in the same repeat:

  case          load                                              ceiling (same repeat)
  http-single   wrk, 64 connections, POST /api/v1/devices/        bare-fastapi: a one-route FastAPI app,
                telemetry with each device's own key and seed      same uvicorn options, same wrk load
                002's body (data, metadata, type); warm: every
                device has sent once since the server started
  http-single-  the same load on a server that has just           bare-fastapi
  cold          registered a fleet of its own (--devices, each
                with its own key): every device's first request
                after a start, at the default log level
  ...@256       both again at 256 connections (--connections)     bare-fastapi@256
  http-single-  warm, paced at half the saturating rate of the    http-single of the same repeat (the
  half          repeat's http-single (each connection pauses      ratio is the share of it reached)
                between an answer and its next request): p50
                below saturation
  http-batch    4 clients, POST /api/v1/telemetry/batch            bare-copy (PostgreSQL COPY) or
                (1000 messages x 5 values)                         bare-executemany (SQLite), same rows
  mqtt          paho QoS 1 publisher -> own Mosquitto -> Telemetra bare-paho: the same publisher -> a paho
                                                                   QoS 1 subscriber, same broker config
  nats          a pre-filled JetStream stream drained by Telemetra bare-jetstream: a pull consumer doing
                                                                   fetch(1000) + ack, same stream size
  rules         http-batch with RULES_PER_TENANT rules of the     http-batch on the same backend, same
                tenant (thresholds, a range, a z-score, a rate)   repeat: the cost of evaluating rules
  baseline      naive-insert: one INSERT (3 rows) + COMMIT per message, in this process

    python bench/ingest.py --quick                      # smoke run, about a minute
    python bench/ingest.py --repeat 3 --write-results   # every case, both backends, medians of 3
    python bench/ingest.py --overload --cases none --write-results   # 2x overload for 60 s

Everything it starts (Telemetra, wrk, brokers, load generators) is stopped by PID, the PostgreSQL bench
database is dropped and the temporary directory removed, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any, Awaitable, Callable

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))  # tests.brokers (own Mosquitto / nats-server) and telemetra's constants

import asyncpg  # noqa: E402
import httpx  # noqa: E402
import orjson  # noqa: E402

from loadgen import VALUES, percentile  # noqa: E402  (bench/ is sys.path[0] when run as a script)
from telemetra.ingest.sources.nats import STREAM_SUBJECTS  # noqa: E402
from tests.brokers import free_port, start_mosquitto, start_nats  # noqa: E402

PG_ADMIN_DSN = os.environ.get("BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
DB_PREFIX = "telemetra_bench_"
TELEMETRA_BIN = Path(sys.executable).with_name("telemetra")
WRK_LUA = BENCH_DIR / "wrk_telemetry.lua"
OVERLOAD_MQTT_PUBLISHERS = 3
RESULTS_MD = BENCH_DIR / "RESULTS.md"

WRK_THREADS = 2
WRK_CONNECTIONS = 64  # the reference load; --connections adds others, their cases named "<case>@<count>"
# The seed's devices send one message per request; the server under the outside load ran with its defaults.
COLD_LOG_LEVEL = "INFO"
BATCH_CLIENTS = 4
BATCH_KEYS = ("temperature", "humidity", "power", "voltage", "current", "frequency", "pressure", "co2", "lux", "rssi")
NAIVE_PG_CONNECTIONS = 64
# Our own Mosquitto (tests/brokers.py writes `persistence false` and `max_queued_messages 0`, i.e. no
# limit on the per-client queue: a benchmark must not lose messages to a queue limit). No limit on
# messages in flight to a client either: Telemetra and the bare subscriber both announce Receive Maximum
# 1000 (MQTT 5), which then is the window.
MOSQUITTO_EXTRA = "allow_anonymous true\nmax_inflight_messages 0\nmax_queued_bytes 0\n"
TELEMETRA_STREAM, TELEMETRA_DURABLE = "TELEMETRY", "telemetra"  # Settings.nats_stream / nats_durable
POLL_S = 0.02


# -- processes -----------------------------------------------------------------------------------------
class Processes:
    """Every process the bench starts, so that each one is stopped by its PID however the bench ends."""

    def __init__(self) -> None:
        self._stoppers: dict[int, Callable[[], None]] = {}

    def spawn(
        self, args: list[str], *, stdout: Path, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.Popen:
        # Output goes to files, never pipes: a chatty child must not block on a pipe nobody reads.
        out = open(stdout, "wb")
        err = open(stdout.with_suffix(".err"), "wb")
        try:
            proc = subprocess.Popen(args, stdout=out, stderr=err, env=env, cwd=cwd)
        finally:
            out.close()
            err.close()
        self._stoppers[proc.pid] = lambda: _terminate(proc)
        return proc

    def adopt(self, own: Any) -> Any:
        """Track a tests.brokers.OwnProcess (it stops itself by PID)."""
        self._stoppers[own.proc.pid] = own.stop
        return own

    def stop(self, pid: int) -> None:
        stopper = self._stoppers.pop(pid, None)
        if stopper is not None:
            stopper()

    def stop_all(self) -> None:
        for pid in list(self._stoppers):
            with contextlib.suppress(Exception):
                self.stop(pid)


def _terminate(proc: subprocess.Popen, timeout_s: float = 15) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def proc_status_mb(pid: int, field_name: str) -> float | None:
    """VmRSS (now) or VmHWM (peak resident set) of a process, in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Child:
    """A bench/loadgen.py process: it prints READY when it takes load and RESULT {json} at the end."""

    def __init__(self, procs: Processes, workdir: Path, role: str, *args: Any) -> None:
        self.out = workdir / f"{role}-{uuid.uuid4().hex[:6]}.out"
        self.procs = procs
        self.proc = procs.spawn([sys.executable, str(BENCH_DIR / "loadgen.py"), role, *map(str, args)], stdout=self.out)

    def _text(self) -> str:
        return self.out.read_text() if self.out.exists() else ""

    async def ready(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while "READY" not in self._text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.out.name} not ready: {self._errors()}")
            await asyncio.sleep(POLL_S)

    async def result(self, timeout_s: float = 600) -> dict:
        deadline = time.monotonic() + timeout_s
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.procs.stop(self.proc.pid)
                raise RuntimeError(f"{self.out.name} did not finish in {timeout_s:.0f} s")
            await asyncio.sleep(POLL_S)
        self.procs.stop(self.proc.pid)
        for line in self._text().splitlines():
            if line.startswith("RESULT "):
                return json.loads(line[len("RESULT ") :])
        raise RuntimeError(f"{self.out.name} gave no result: {self._errors()}")

    def _errors(self) -> str:
        err = self.out.with_suffix(".err")
        return err.read_text()[-1500:] if err.exists() else ""


# -- results -------------------------------------------------------------------------------------------
@dataclass
class Run:
    """One measured run of one case on one backend."""

    case: str
    backend: str  # sqlite, postgres, or "-" when no database is involved
    repeat: int
    messages: int  # messages acknowledged (and, for Telemetra, verified committed) in the timed window
    points: int
    seconds: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    rss_mb: float | None = None  # peak RSS (VmHWM) of the process under test
    cpu_pct: float | None = None  # its CPU over the timed window; 100 = one whole core
    ok: bool = True
    note: str = ""
    ratio: float | None = None  # to the ceiling of the same repeat (see CEILINGS)
    ceiling: str = ""

    @property
    def msg_s(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0

    @property
    def points_s(self) -> float:
        return self.points / self.seconds if self.seconds > 0 else 0.0


# Which ceiling each Telemetra case is held against, and by which rate. A case run at another connection
# count than the reference ("<case>@256") is held against its ceiling at the same count.
CEILINGS: dict[tuple[str, str], tuple[str, str, str]] = {
    ("http-single", "sqlite"): ("bare-fastapi", "-", "msg_s"),
    ("http-single", "postgres"): ("bare-fastapi", "-", "msg_s"),
    ("http-single-cold", "sqlite"): ("bare-fastapi", "-", "msg_s"),
    ("http-single-cold", "postgres"): ("bare-fastapi", "-", "msg_s"),
    ("http-single-half", "sqlite"): ("http-single", "sqlite", "msg_s"),
    ("http-single-half", "postgres"): ("http-single", "postgres", "msg_s"),
    ("http-batch", "sqlite"): ("bare-executemany", "sqlite", "points_s"),
    ("http-batch", "postgres"): ("bare-copy", "postgres", "points_s"),
    ("rules", "sqlite"): ("http-batch", "sqlite", "points_s"),
    ("rules", "postgres"): ("http-batch", "postgres", "points_s"),
    ("mqtt", "sqlite"): ("bare-paho", "-", "msg_s"),
    ("mqtt", "postgres"): ("bare-paho", "-", "msg_s"),
    ("nats", "sqlite"): ("bare-jetstream", "-", "msg_s"),
    ("nats", "postgres"): ("bare-jetstream", "-", "msg_s"),
}


def at_connections(case: str, connections: int) -> str:
    """The name of ``case`` run at ``connections``: the reference count leaves it as it is."""
    return case if connections == WRK_CONNECTIONS else f"{case}@{connections}"


def ceiling_of(case: str, backend: str) -> tuple[str, str, str] | None:
    base, at, connections = case.partition("@")
    spec = CEILINGS.get((base, backend))
    if spec is None:
        return None
    return (f"{spec[0]}{at}{connections}", spec[1], spec[2])


def fill_ratios(runs: list[Run]) -> None:
    by_key = {(r.case, r.backend, r.repeat): r for r in runs if r.ok}
    for run in runs:
        spec = ceiling_of(run.case, run.backend)
        if spec is None or not run.ok:
            continue
        ceiling = by_key.get((spec[0], spec[1], run.repeat))
        if ceiling is not None and getattr(ceiling, spec[2]) > 0:
            run.ratio = getattr(run, spec[2]) / getattr(ceiling, spec[2])
            run.ceiling = spec[0]


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


TABLE_HEADER = (
    "case",
    "backend",
    "messages",
    "msg/s",
    "points/s",
    "p50 ms",
    "p99 ms",
    "peak RSS MB",
    "CPU %",
    "ratio to ceiling",
)


@dataclass
class Summary:
    """The medians of one case on one backend over the repeats (peak RSS: the highest, to be safe)."""

    case: str
    backend: str
    messages: int
    msg_s: float
    points_s: float
    p50_ms: float | None
    p99_ms: float | None
    rss_mb: float | None
    cpu_pct: float | None
    ok: bool
    ratio: float | None
    ceiling: str
    note: str


def summarize(runs: list[Run]) -> Summary:
    good = [r for r in runs if r.ok] or runs

    def med(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return statistics.median(present) if present else None

    return Summary(
        case=runs[0].case,
        backend=runs[0].backend,
        messages=int(med([r.messages for r in good])),
        msg_s=med([r.msg_s for r in good]),
        points_s=med([r.points_s for r in good]),
        p50_ms=med([r.p50_ms for r in good]),
        p99_ms=med([r.p99_ms for r in good]),
        rss_mb=max((r.rss_mb for r in good if r.rss_mb is not None), default=None),
        cpu_pct=med([r.cpu_pct for r in good]),
        ok=all(r.ok for r in runs),
        ratio=med([r.ratio for r in good]),
        ceiling=next((r.ceiling for r in good if r.ceiling), ""),
        note="; ".join(sorted({r.note for r in runs if r.note})),
    )


def cells(row: Run | Summary) -> list[str]:
    """One table row; a Run and a Summary share the attribute names it reads."""
    ratio = f"{row.ratio:.0%} of {row.ceiling}" if row.ratio is not None else "—"
    return [
        row.case,
        row.backend,
        f"{row.messages:,}",
        _fmt(row.msg_s) if row.ok else "FAILED",
        _fmt(row.points_s),
        _fmt(row.p50_ms, 1),
        _fmt(row.p99_ms, 1),
        _fmt(row.rss_mb),
        _fmt(row.cpu_pct),
        ratio,
    ]


# Minimum column widths, so that rows printed one at a time as runs finish line up with the header.
MIN_WIDTHS = (16, 8, 8, 7, 9, 7, 7, 11, 5, 26)


def text_table(header: tuple[str, ...], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), MIN_WIDTHS[i] if i < len(MIN_WIDTHS) else 0, *(len(r[i]) for r in rows))
        for i, h in enumerate(header)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) for row in rows]
    return "\n".join(lines)


def md_table(header: tuple[str, ...], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# -- databases -----------------------------------------------------------------------------------------
class Database:
    """The bench database of one backend, as the harness sees it (counts, verification, latencies)."""

    def __init__(self, backend: str, url: str) -> None:
        self.backend = backend
        self.url = url
        self._pg: asyncpg.Connection | None = None
        self._lite: sqlite3.Connection | None = None

    async def connect(self) -> None:
        """Connect once the first server has migrated the schema."""
        if self.backend == "postgres":
            self._pg = await asyncpg.connect(self.url)
        else:
            self._lite = sqlite3.connect(self.url.removeprefix("sqlite:///"), isolation_level=None)
            self._lite.execute("PRAGMA busy_timeout=10000")

    async def close(self) -> None:
        if self._pg is not None:
            await self._pg.close()
        if self._lite is not None:
            self._lite.close()

    async def _one(self, pg_sql: str, lite_sql: str, *args: Any) -> Any:
        if self._pg is not None:
            return await self._pg.fetchrow(pg_sql, *args)
        return self._lite.execute(lite_sql, args).fetchone()

    async def committed(self) -> int:
        """Messages committed so far, from the per-day counters the writer keeps in each transaction
        (a one-row read: cheap enough to poll every 20 ms while Telemetra writes)."""
        sql = "SELECT coalesce(sum(messages), 0) FROM daily_counts"
        return int((await self._one(sql, sql))[0])

    async def exact_counts(self) -> tuple[int, int]:
        """count(*) of messages and points: the independent check that every message was committed."""
        sql = "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM points)"
        row = await self._one(sql, sql)
        return int(row[0]), int(row[1])

    async def empty_telemetry(self) -> None:
        """Drop every stored message, point and statistic, keeping the fleet and the counters: each run
        starts from the same store. Without it a run paid for the points of the runs before it (SQLite
        especially, whose series-clustered points table slows as it outgrows the cache), so repeats were
        not alike and the rules case, run after http-batch, met a larger store than its ceiling did."""
        tables = (
            "points",
            "messages",
            "message_ids",
            "latest",
            "rollup_hourly",
            "energy_hourly",
            "tenant_energy_hourly",
        )
        if self._pg is not None:
            await self._pg.execute(f"TRUNCATE {', '.join(tables)}")
        else:
            for table in tables:
                self._lite.execute(f"DELETE FROM {table}")

    async def max_message_id(self) -> int:
        sql = "SELECT coalesce(max(id), 0) FROM messages"
        return int((await self._one(sql, sql))[0])

    async def commit_latencies(self, after_id: int) -> list[float]:
        """Publish -> commit latency of broker messages after ``after_id``: the publisher put its send time
        in the metadata; received_at is the time the writer started the committing transaction."""
        if self._pg is not None:
            rows = await self._pg.fetch(
                "SELECT extract(epoch FROM received_at) - (metadata->>'t')::float8 FROM messages "
                "WHERE id > $1 AND metadata->>'t' IS NOT NULL",
                after_id,
            )
            return [float(r[0]) for r in rows]
        rows = self._lite.execute(
            "SELECT received_at / 1e6 - json_extract(metadata, '$.t') FROM messages "
            "WHERE id > ? AND json_extract(metadata, '$.t') IS NOT NULL",
            (after_id,),
        )
        return [float(r[0]) for r in rows]

    async def wait_committed(self, target: int, timeout_s: float, stalled_s: float = 30) -> tuple[float, int]:
        """Poll until ``target`` messages are committed; return (wall time reached, count). Gives up after
        ``timeout_s``, or when nothing new was committed for ``stalled_s``."""
        deadline = time.monotonic() + timeout_s
        last, last_change = -1, time.monotonic()
        while True:
            count = await self.committed()
            now = time.time()
            if count >= target:
                return now, count
            if count != last:
                last, last_change = count, time.monotonic()
            if time.monotonic() > deadline or time.monotonic() - last_change > stalled_s:
                return now, count
            await asyncio.sleep(POLL_S)


async def pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def pg_url(database: str) -> str:
    return PG_ADMIN_DSN.rpartition("/")[0] + "/" + database


async def drop_stale_bench_databases() -> None:
    """Drop bench databases left by an earlier run that was killed (its PID is in the name and gone)."""
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    try:
        names = [
            r[0] for r in await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", DB_PREFIX + "%")
        ]
        for name in names:
            pid = name.removeprefix(DB_PREFIX).split("_")[0]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


# -- Telemetra -----------------------------------------------------------------------------------------
@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def peak_rss_mb(self) -> float | None:
        return proc_status_mb(self.pid, "VmHWM")

    def rss_mb(self) -> float | None:
        return proc_status_mb(self.pid, "VmRSS")

    def cpu_s(self) -> float:
        return proc_cpu_s(self.pid)


@dataclass
class Fleet:
    """The tenant and devices registered on one backend, reused by every run on it."""

    tenant_key: str
    device_ids: list[str]
    device_keys: list[str]
    ids_file: Path
    keys_file: Path


@dataclass
class Backend:
    name: str
    url: str
    db: Database
    fleet: Fleet | None = None


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path, procs: Processes) -> None:
        self.args = args
        self.workdir = workdir
        self.procs = procs
        self.admin_key = "tlma_" + secrets.token_urlsafe(32)
        self.backends: dict[str, Backend] = {}
        self.pg_database: str | None = None

    # -- set-up ----------------------------------------------------------------------------------
    async def prepare_backend(self, name: str) -> Backend:
        if name == "postgres":
            self.pg_database = f"{DB_PREFIX}{os.getpid()}_{uuid.uuid4().hex[:6]}"
            await pg_admin(f'CREATE DATABASE "{self.pg_database}"')
            url = pg_url(self.pg_database)
        else:
            url = f"sqlite:///{self.workdir / 'bench.db'}"
        backend = Backend(name, url, Database(name, url))
        server = await self.start_server(backend)
        try:
            await backend.db.connect()
            backend.fleet = await self.register_fleet(server, name, name)
        finally:
            self.stop_server(server)
        self.backends[name] = backend
        return backend

    async def register_fleet(self, server: Server, backend: str, fleet_name: str) -> Fleet:
        """One tenant, then --devices devices with their own keys (``fleet_name`` names the tenant, the files
        and, but for the first fleet, the devices: device ids are unique across tenants).

        16 registrations at a time on PostgreSQL; one at a time on SQLite, which has a single writer anyway
        (and before commit 582c2f4 read a new device back on a reader connection whose WAL snapshot could
        be stale while another read's cursor was open: concurrent registrations then failed with 500).
        """
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            resp = await client.post(
                "/api/v1/admin/tenants", json={"name": f"bench-{fleet_name}"}, headers={"X-API-Key": self.admin_key}
            )
            resp.raise_for_status()
            tenant_key = resp.json()["api_key"]
            prefix = "bench" if fleet_name == backend else f"bench-{fleet_name}"
            ids = [f"{prefix}-{i:05d}" for i in range(self.args.devices)]
            keys: dict[str, str] = {}
            gate = asyncio.Semaphore(16 if backend == "postgres" else 1)

            async def register(device_id: str) -> None:
                async with gate:
                    r = await client.post(
                        "/api/v1/devices/register",
                        headers={"X-API-Key": tenant_key},
                        json={"id": device_id, "name": device_id},
                    )
                    r.raise_for_status()
                    keys[device_id] = r.json()["device"]["api_key"]

            await asyncio.gather(*(register(d) for d in ids))
        ids_file, keys_file = self.workdir / f"devices-{fleet_name}.txt", self.workdir / f"keys-{fleet_name}.txt"
        ids_file.write_text("\n".join(ids) + "\n")
        keys_file.write_text("\n".join(keys[d] for d in ids) + "\n")
        return Fleet(tenant_key, ids, [keys[d] for d in ids], ids_file, keys_file)

    async def start_server(
        self,
        backend: Backend,
        *,
        mqtt: str | None = None,
        nats: str | None = None,
        wait: bool = True,
        log_level: str = "WARNING",
    ) -> Server:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMETRA_")}
        env.update(
            TELEMETRA_DATABASE_URL=backend.url,
            TELEMETRA_ADMIN_KEY=self.admin_key,
            TELEMETRA_LOG_LEVEL=log_level,
            # A benchmark measures the ceiling; the per-device budgets would cap it at 100 msg/min each.
            TELEMETRA_RATE_LIMITS_ENABLED="false",
            # A fresh MQTT session per server: nothing of an earlier run is redelivered.
            TELEMETRA_MQTT_CLIENT_ID=f"telemetra-bench-{uuid.uuid4().hex[:8]}",
        )
        env.update(self.args.server_env)  # tuning experiments, e.g. TELEMETRA_NATS_FETCH_BATCH=2000
        if self.args.source:
            # A source tree other than the installed one (a commit's snapshot, a prototype of a fix): the
            # venv's interpreter and packages, that tree's telemetra package first on the path.
            env["PYTHONPATH"] = str(self.args.source)
            args = [sys.executable, "-m", "telemetra"]
        else:
            args = [str(TELEMETRA_BIN)]
        args += ["serve", "--host", "127.0.0.1", "--port", str(port)]
        if mqtt:
            args += ["--mqtt", mqtt]
        if nats:
            args += ["--nats", nats]
        log = self.workdir / f"telemetra-{backend.name}-{port}.log"
        # cwd: the temporary directory, so that no stray .env file changes the settings.
        server = Server(self.procs.spawn(args, stdout=log, env=env, cwd=self.workdir), port, log)
        if wait:
            await self.wait_healthy(server)
        return server

    async def wait_healthy(self, server: Server, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                if server.proc.poll() is not None:
                    break
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(server.url + "/health")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        errors = server.log.with_suffix(".err").read_text()[-2000:]
        self.stop_server(server)
        raise RuntimeError(f"telemetra did not become healthy: {errors}")

    def stop_server(self, server: Server) -> None:
        self.procs.stop(server.pid)

    def own_dir(self, name: str) -> Path:
        path = self.workdir / f"{name}-{uuid.uuid4().hex[:6]}"
        path.mkdir()
        return path

    # -- HTTP single ---------------------------------------------------------------------------------
    async def wrk(
        self, url: str, keys_file: Path, total: int, connections: int = WRK_CONNECTIONS, pause_ms: float = 0
    ) -> dict:
        """Run wrk until ``total`` answers (split over its threads); return the script's JSON summary. With
        ``pause_ms``, each connection pauses that long between an answer and its next request."""
        per_thread = max(1, total // WRK_THREADS)
        marker = self.workdir / f"wrk-done-{uuid.uuid4().hex[:6]}-"
        out = self.workdir / f"wrk-{uuid.uuid4().hex[:6]}.out"
        proc = self.procs.spawn(
            [
                "wrk",
                f"-t{WRK_THREADS}",
                f"-c{connections}",
                "--latency",
                "--timeout",
                "30s",
                "-d",
                f"{self.args.timeout:.0f}s",
                "-s",
                str(WRK_LUA),
                url,
                "--",
                str(keys_file),
                str(per_thread),
                str(WRK_THREADS),
                str(marker),
            ],
            stdout=out,
            env={**os.environ, "WRK_PAUSE_MS": f"{pause_ms:.3f}"} if pause_ms > 0 else None,
        )
        markers = [Path(f"{marker}{i}") for i in range(WRK_THREADS)]
        while proc.poll() is None and not all(m.exists() for m in markers):
            await asyncio.sleep(0.005)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # ends wrk's sleep: it joins its threads and reports now
        while proc.poll() is None:
            await asyncio.sleep(POLL_S)
        self.procs.stop(proc.pid)
        text = out.read_text()
        line = next((ln for ln in text.splitlines() if ln.startswith("WRK_RESULT ")), None)
        if line is None:
            raise RuntimeError(f"wrk gave no result: {text[-1000:]} {out.with_suffix('.err').read_text()[-1000:]}")
        result = json.loads(line[len("WRK_RESULT ") :])
        statuses: Counter[str] = Counter()
        for part in result["statuses"]:
            statuses.update(part)
        result["statuses"] = dict(statuses)
        return result

    async def http_single(self, backend: Backend, repeat: int, connections: int = WRK_CONNECTIONS) -> Run:
        """Warm: every device has sent once since the server started (a run of its own, not timed)."""
        fleet = backend.fleet
        server = await self.start_server(backend)
        try:
            # Warm-up: every device once (connections, code paths, PostgreSQL's caches); not timed.
            await self.wrk(server.url, fleet.keys_file, min(len(fleet.device_keys), self.args.count), connections)
            return await self._timed_single(backend, server, fleet, "http-single", repeat, connections)
        finally:
            self.stop_server(server)

    async def http_single_cold(self, backend: Backend, repeat: int, connections: int = WRK_CONNECTIONS) -> Run:
        """The outside shape: a server that has just registered a fleet of its own, then at once the load,
        every device's first request included in the timed window; the server at the default log level."""
        server = await self.start_server(backend, log_level=COLD_LOG_LEVEL)
        try:
            fleet = await self.register_fleet(server, backend.name, f"{backend.name}-cold-{repeat}-{connections}")
            return await self._timed_single(backend, server, fleet, "http-single-cold", repeat, connections)
        finally:
            self.stop_server(server)

    async def http_single_half(self, backend: Backend, repeat: int, saturating_msg_s: float) -> Run:
        """Warm, at half ``saturating_msg_s``: each connection pauses between an answer and its next request.
        A first short pass measures the latency at that pace, which the pause then leaves out."""
        fleet = backend.fleet
        target = saturating_msg_s / 2
        cycle_ms = 1000 * WRK_CONNECTIONS / target
        server = await self.start_server(backend)
        try:
            await self.wrk(server.url, fleet.keys_file, min(len(fleet.device_keys), self.args.count))
            probe = await self.wrk(server.url, fleet.keys_file, max(1000, self.args.count // 5), pause_ms=cycle_ms)
            pause_ms = max(0.1, cycle_ms - probe["mean_us"] / 1000)
            run = await self._timed_single(
                backend, server, fleet, "http-single-half", repeat, WRK_CONNECTIONS, pause_ms=pause_ms
            )
        finally:
            self.stop_server(server)
        run.note = (run.note + "; " if run.note else "") + (
            f"paced for {target:,.0f} msg/s (half of {saturating_msg_s:,.0f}), pause {pause_ms:.1f} ms"
        )
        return run

    async def _timed_single(
        self,
        backend: Backend,
        server: Server,
        fleet: Fleet,
        case: str,
        repeat: int,
        connections: int,
        pause_ms: float = 0,
    ) -> Run:
        before_msgs = (await backend.db.exact_counts())[0]
        cpu0 = server.cpu_s()
        result = await self.wrk(server.url, fleet.keys_file, self.args.count, connections, pause_ms)
        cpu = server.cpu_s() - cpu0
        after_msgs = (await backend.db.exact_counts())[0]
        rss = server.peak_rss_mb()
        seconds = result["duration_us"] / 1e6
        created = result["statuses"].get("201", 0)
        # wrk stops a thread with up to `connections` requests still in flight: those are committed too.
        ok = created == result["requests"] and after_msgs - before_msgs >= created
        note = "" if ok else f"statuses {result['statuses']}, committed {after_msgs - before_msgs}"
        return Run(
            at_connections(case, connections),
            backend.name,
            repeat,
            created,
            3 * created,
            seconds,
            result["p50_us"] / 1000,
            result["p99_us"] / 1000,
            rss,
            100 * cpu / seconds,
            ok,
            note,
        )

    async def bare_fastapi(self, repeat: int, connections: int = WRK_CONNECTIONS) -> Run:
        fleet = next(iter(self.backends.values())).fleet
        port = free_port()
        log = self.workdir / f"bare-app-{port}.out"
        proc = self.procs.spawn([sys.executable, str(BENCH_DIR / "bare_app.py"), "--port", str(port)], stdout=log)
        server = Server(proc, port, log)
        try:
            await self.wait_healthy(server)
            await self.wrk(server.url, fleet.keys_file, min(len(fleet.device_keys), self.args.count), connections)
            cpu0 = server.cpu_s()
            result = await self.wrk(server.url, fleet.keys_file, self.args.count, connections)
            cpu = server.cpu_s() - cpu0
            rss = server.peak_rss_mb()
        finally:
            self.stop_server(server)
        seconds = result["duration_us"] / 1e6
        created = result["statuses"].get("201", 0)
        return Run(
            at_connections("bare-fastapi", connections),
            "-",
            repeat,
            created,
            3 * created,
            seconds,
            result["p50_us"] / 1000,
            result["p99_us"] / 1000,
            rss,
            100 * cpu / seconds,
            created == result["requests"],
        )

    # -- HTTP batch ----------------------------------------------------------------------------------
    def batch_bodies(self, fleet: Fleet) -> list[bytes]:
        """Request bodies of --batch-messages messages, device ids round-robin over the fleet.

        No timestamps: Telemetra stamps each message with its receive time, strictly increasing per
        device, so the same bodies can be sent again and every point stays unique.
        """
        size, values = (
            self.args.batch_messages,
            {k: 20.0 + i for i, k in enumerate(BATCH_KEYS[: self.args.batch_points])},
        )
        ids = fleet.device_ids
        bodies = []
        for start in range(0, len(ids), size):
            chunk = [ids[(start + i) % len(ids)] for i in range(size)]
            bodies.append(orjson.dumps({"messages": [{"device_id": d, "data": values} for d in chunk]}))
        return bodies

    async def send_batches(
        self, url: str, tenant_key: str, bodies: list[bytes], requests: int, clients: int
    ) -> tuple[list[float], int, Counter]:
        """Send ``requests`` batch requests from ``clients`` concurrent clients; (latencies, accepted, statuses)."""
        latencies: list[float] = []
        statuses: Counter[int] = Counter()
        accepted = 0
        next_request = 0
        headers = {"X-API-Key": tenant_key, "Content-Type": "application/json"}
        async with httpx.AsyncClient(base_url=url, timeout=120, limits=httpx.Limits(max_connections=clients)) as client:

            async def worker() -> None:
                nonlocal next_request, accepted
                while next_request < requests:
                    body = bodies[next_request % len(bodies)]
                    next_request += 1
                    started = time.perf_counter()
                    resp = await client.post("/api/v1/telemetry/batch", content=body, headers=headers)
                    latencies.append(time.perf_counter() - started)
                    statuses[resp.status_code] += 1
                    if resp.status_code == 200:
                        accepted += orjson.loads(resp.content)["accepted"]

            await asyncio.gather(*(worker() for _ in range(clients)))
        return latencies, accepted, statuses

    async def create_rules(self, server: Server, tenant_key: str) -> list[int]:
        """RULES_PER_TENANT rules on the batch's keys that hold for ordinary values (no alert is raised):
        what is measured is evaluation, the per-point cost every tenant with rules pays."""
        keys = BATCH_KEYS[: self.args.batch_points]
        ids = []
        async with httpx.AsyncClient(base_url=server.url, timeout=60, headers={"X-API-Key": tenant_key}) as client:
            for i in range(RULES_PER_TENANT):
                key = keys[i % len(keys)]
                kind = i % 5
                condition = (
                    {"type": "threshold", "op": ">", "value": 1000 + i}
                    if kind < 2
                    else {"type": "range", "low": -100, "high": 1000}
                    if kind == 2
                    else {"type": "zscore", "k": 4, "window": 30}
                    if kind == 3
                    else {"type": "rate", "max_per_s": 1000}
                )
                resp = await client.post(
                    "/api/v1/rules", json={"name": f"bench-{i}", "key": key, "condition": condition}
                )
                resp.raise_for_status()
                ids.append(resp.json()["rule"]["id"])
        return ids

    async def wait_evaluations_settled(self, server: Server, quiet_s: float = 1.0, timeout_s: float = 120) -> None:
        """Wait until the server's count of evaluated batches has not moved for ``quiet_s``."""
        deadline = time.monotonic() + timeout_s
        last, since = None, time.monotonic()
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            while time.monotonic() < deadline:
                text = (await client.get("/metrics")).text
                count = next(
                    (
                        line.split()[-1]
                        for line in text.splitlines()
                        if line.startswith("telemetra_rules_evaluation_seconds_count")
                    ),
                    None,
                )
                if count != last:
                    last, since = count, time.monotonic()
                elif time.monotonic() - since >= quiet_s:
                    return
                await asyncio.sleep(0.1)

    async def wait_rules_backlog_empty(self, server: Server, timeout_s: float = 120) -> None:
        """Wait until the server has evaluated every batch handed to its rules."""
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            while time.monotonic() < deadline:
                text = (await client.get("/metrics")).text
                backlog = next(
                    float(line.split()[-1])
                    for line in text.splitlines()
                    if line.startswith("telemetra_rules_backlog_batches ")
                )
                if backlog == 0:
                    return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"rule evaluation still behind after {timeout_s:.0f} s")

    async def delete_rules(self, server: Server, tenant_key: str, ids: list[int]) -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=60, headers={"X-API-Key": tenant_key}) as client:
            for rule_id in ids:
                (await client.delete(f"/api/v1/rules/{rule_id}")).raise_for_status()

    async def http_batch(self, backend: Backend, repeat: int, *, rules: bool = False) -> Run:
        fleet = backend.fleet
        bodies = self.batch_bodies(fleet)
        requests = max(1, self.args.count // self.args.batch_messages)
        server = await self.start_server(backend)
        rule_ids: list[int] = []
        try:
            if rules:
                rule_ids = await self.create_rules(server, fleet.tenant_key)
            await self.send_batches(server.url, fleet.tenant_key, bodies, BATCH_CLIENTS, BATCH_CLIENTS)  # warm-up
            if rules:
                # The warm-up's batches build every (rule, device) window from the store once (a one-off
                # per process start); wait until they are evaluated, or the timed run would pay for it.
                await self.wait_rules_backlog_empty(server)
                await self.wait_evaluations_settled(server)
            before = await backend.db.exact_counts()
            cpu0 = server.cpu_s()
            started = time.perf_counter()
            latencies, accepted, statuses = await self.send_batches(
                server.url, fleet.tenant_key, bodies, requests, BATCH_CLIENTS
            )
            seconds = time.perf_counter() - started
            cpu = server.cpu_s() - cpu0
            after = await backend.db.exact_counts()
            rss = server.peak_rss_mb()
            if rule_ids:  # the rules belong to this case only
                await self.delete_rules(server, fleet.tenant_key, rule_ids)
        finally:
            self.stop_server(server)
        points = accepted * self.args.batch_points
        ok = (
            statuses == Counter({200: requests}) and after[0] - before[0] == accepted and after[1] - before[1] == points
        )
        note = (
            "" if ok else f"statuses {dict(statuses)}, committed {after[0] - before[0]} msgs {after[1] - before[1]} pts"
        )
        return Run(
            "rules" if rules else "http-batch",
            backend.name,
            repeat,
            accepted,
            points,
            seconds,
            _ms(percentile(latencies, 50)),
            _ms(percentile(latencies, 99)),
            rss,
            100 * cpu / seconds,
            ok,
            note,
        )

    def bare_points(self, fleet: Fleet) -> list[tuple[int, int, int, float]]:
        """The batch case's points as (device_pk, key_id, message number, value): unique per (device,
        key, message number), which each backend turns into its timestamp type."""
        keys, devices = self.args.batch_points, len(fleet.device_ids)
        messages = (self.args.count // self.args.batch_messages) * self.args.batch_messages
        return [(m % devices + 1, k + 1, m, 20.0 + k) for m in range(messages) for k in range(keys)]

    async def bare_copy(self, backend: Backend, repeat: int) -> Run:
        """PostgreSQL COPY of the same points into a narrow table with the same primary key, in chunks of
        one batch's points, from as many connections as the batch case has clients; no upsert, no
        latest values, no raw messages: the ceiling of what the database takes."""
        base = datetime.now(timezone.utc)
        rows = [
            (d, k, base + timedelta(microseconds=m), v, None, None, None)
            for d, k, m, v in self.bare_points(backend.fleet)
        ]
        total = len(rows)
        chunk = self.args.batch_messages * self.args.batch_points
        chunks = [rows[i : i + chunk] for i in range(0, len(rows), chunk)]
        pool = await asyncpg.create_pool(backend.url, min_size=BATCH_CLIENTS, max_size=BATCH_CLIENTS)
        try:
            await pool.execute("DROP TABLE IF EXISTS bench_bare_points")
            await pool.execute(
                "CREATE TABLE bench_bare_points (device_pk integer NOT NULL, key_id integer NOT NULL, "
                "ts timestamptz NOT NULL, v_num double precision, v_str text, v_bool boolean, "
                "v_json jsonb, PRIMARY KEY (device_pk, key_id, ts))"
            )
            latencies: list[float] = []
            queue = list(reversed(chunks))

            async def worker() -> None:
                async with pool.acquire() as conn:
                    while queue:
                        records = queue.pop()
                        t0 = time.perf_counter()
                        await conn.copy_records_to_table("bench_bare_points", records=records)
                        latencies.append(time.perf_counter() - t0)

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(BATCH_CLIENTS)))
            seconds = time.perf_counter() - started
            copied = await pool.fetchval("SELECT count(*) FROM bench_bare_points")
            await pool.execute("DROP TABLE bench_bare_points")
        finally:
            await pool.close()
        messages = total // self.args.batch_points
        return Run(
            "bare-copy",
            "postgres",
            repeat,
            messages,
            total,
            seconds,
            _ms(percentile(latencies, 50)),
            _ms(percentile(latencies, 99)),
            ok=copied == total,
        )

    async def bare_executemany(self, backend: Backend, repeat: int) -> Run:
        """SQLite executemany of the same points, one transaction per batch's worth, same pragmas as
        Telemetra's store (WAL, synchronous=NORMAL), into a table shaped like `points`."""
        base_us = time.time_ns() // 1000
        rows = [(d, k, base_us + m, v, None, None, None) for d, k, m, v in self.bare_points(backend.fleet)]
        total = len(rows)
        chunk = self.args.batch_messages * self.args.batch_points
        path = self.workdir / f"bare-{uuid.uuid4().hex[:6]}.db"
        conn = _sqlite_like_telemetra(path)
        conn.execute(
            "CREATE TABLE bare_points (device_pk INTEGER NOT NULL, key_id INTEGER NOT NULL, ts INTEGER NOT NULL, "
            "v_num REAL, v_str TEXT, v_bool INTEGER, v_json TEXT, PRIMARY KEY (device_pk, key_id, ts)) "
            "WITHOUT ROWID"
        )
        latencies = []
        started = time.perf_counter()
        for i in range(0, len(rows), chunk):
            t0 = time.perf_counter()
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO bare_points VALUES (?, ?, ?, ?, ?, ?, ?)", rows[i : i + chunk])
            conn.execute("COMMIT")
            latencies.append(time.perf_counter() - t0)
            await asyncio.sleep(0)
        seconds = time.perf_counter() - started
        copied = conn.execute("SELECT count(*) FROM bare_points").fetchone()[0]
        conn.close()
        return Run(
            "bare-executemany",
            "sqlite",
            repeat,
            total // self.args.batch_points,
            total,
            seconds,
            _ms(percentile(latencies, 50)),
            _ms(percentile(latencies, 99)),
            ok=copied == total,
        )

    # -- MQTT ----------------------------------------------------------------------------------------
    def mosquitto(self) -> Any:
        return self.procs.adopt(start_mosquitto(self.own_dir("mosquitto"), MOSQUITTO_EXTRA))

    async def mqtt(self, backend: Backend, repeat: int) -> Run:
        fleet = backend.fleet
        broker = self.mosquitto()
        server = None
        try:
            server = await self.start_server(backend, mqtt=f"mqtt://127.0.0.1:{broker.port}")
            # Warm-up, and proof that Telemetra's subscription is in place before the timed run.
            warm = min(len(fleet.device_ids), self.args.count)
            start = await backend.db.committed()
            await Child(
                self.procs,
                self.workdir,
                "mqtt-pub",
                "--port",
                broker.port,
                "--devices",
                fleet.ids_file,
                "--count",
                warm,
            ).result()
            reached, count = await backend.db.wait_committed(start + warm, 60)
            if count < start + warm:
                raise RuntimeError(f"warm-up: {count - start} of {warm} MQTT messages committed")
            before_id, before = await backend.db.max_message_id(), await backend.db.exact_counts()
            start = await backend.db.committed()
            cpu0 = server.cpu_s()
            pub = Child(
                self.procs,
                self.workdir,
                "mqtt-pub",
                "--port",
                broker.port,
                "--devices",
                fleet.ids_file,
                "--count",
                self.args.count,
                "--inflight",
                1000,
            )
            reached, count = await backend.db.wait_committed(start + self.args.count, self.args.timeout)
            cpu = server.cpu_s() - cpu0
            published = await pub.result()
            after = await backend.db.exact_counts()
            latencies = await backend.db.commit_latencies(before_id)
            rss = server.peak_rss_mb()
        finally:
            if server is not None:
                self.stop_server(server)
            self.procs.stop(broker.proc.pid)
        committed = after[0] - before[0]
        seconds = reached - published["first_publish"]
        ok = committed == self.args.count and published["acked"] == self.args.count
        note = "" if ok else f"LOSS: {committed} of {self.args.count} committed"
        return Run(
            "mqtt",
            backend.name,
            repeat,
            committed,
            after[1] - before[1],
            seconds,
            _ms(percentile(latencies, 50)),
            _ms(percentile(latencies, 99)),
            rss,
            100 * cpu / seconds,
            ok,
            note,
        )

    async def bare_paho(self, repeat: int) -> Run:
        fleet = next(iter(self.backends.values())).fleet
        broker = self.mosquitto()
        try:
            sub = Child(
                self.procs,
                self.workdir,
                "mqtt-sub",
                "--port",
                broker.port,
                "--count",
                self.args.count,
                "--receive-maximum",
                1000,
                "--timeout",
                self.args.timeout,
            )
            await sub.ready()
            pub = Child(
                self.procs,
                self.workdir,
                "mqtt-pub",
                "--port",
                broker.port,
                "--devices",
                fleet.ids_file,
                "--count",
                self.args.count,
                "--inflight",
                1000,
            )
            received = await sub.result(self.args.timeout + 30)
            published = await pub.result()
        finally:
            self.procs.stop(broker.proc.pid)
        seconds = received["last_receive"] - published["first_publish"] if received["last_receive"] else 0
        ok = received["received"] == self.args.count
        return Run(
            "bare-paho",
            "-",
            repeat,
            received["received"],
            3 * received["received"],
            seconds,
            received["p50_ms"],
            received["p99_ms"],
            ok=ok,
            note="" if ok else f"LOSS: {received['received']} of {self.args.count} received",
        )

    # -- NATS JetStream ------------------------------------------------------------------------------
    async def fill_stream(self, url: str, stream: str, subjects: list[str], prefix: str, fleet: Fleet) -> dict:
        return await Child(
            self.procs,
            self.workdir,
            "nats-pub",
            "--url",
            url,
            "--stream",
            stream,
            "--subjects",
            ",".join(subjects),
            "--prefix",
            prefix,
            "--devices",
            fleet.ids_file,
            "--count",
            self.args.count,
        ).result()

    async def watch_consumer(
        self,
        url: str,
        stream: str,
        durable: str,
        last_seq: int,
        on_first: Callable[[], None] = lambda: None,
        alive: Callable[[], bool] = lambda: True,
    ) -> tuple[float, float]:
        """Poll a durable consumer until every message up to ``last_seq`` is acknowledged; return the wall
        times of its first delivery and of the full ack floor. The same watcher times Telemetra and the
        bare consumer, so both carry the same ~20 ms polling error."""
        import nats
        from nats.js.errors import NotFoundError

        nc = await nats.connect(url)
        js = nc.jetstream()
        first = None
        deadline = time.monotonic() + self.args.timeout
        try:
            while time.monotonic() < deadline and alive():
                try:
                    info = await js.consumer_info(stream, durable)
                except NotFoundError:
                    info = None
                now = time.time()
                if info is not None:
                    if first is None and info.delivered.stream_seq > 0:
                        first = now
                        on_first()
                    if info.ack_floor.stream_seq >= last_seq:
                        return first or now, now
                await asyncio.sleep(POLL_S)
        finally:
            await nc.close()
        raise RuntimeError(
            f"consumer {durable} did not acknowledge all {last_seq} messages (in time, or its process ended)"
        )

    async def nats(self, backend: Backend, repeat: int) -> Run:
        fleet = backend.fleet
        broker = self.procs.adopt(start_nats(self.own_dir("nats")))
        url = f"nats://127.0.0.1:{broker.port}"
        server = None
        try:
            # Pre-fill the stream Telemetra consumes (same subjects as it creates), then start Telemetra:
            # the timed part is the drain, like the bare consumer's below.
            filled = await self.fill_stream(url, TELEMETRA_STREAM, STREAM_SUBJECTS, "telemetry.", fleet)
            before = await backend.db.exact_counts()
            cpu_at_first: list[float] = []
            holder: list[Server] = []
            watch = asyncio.ensure_future(
                self.watch_consumer(
                    url,
                    TELEMETRA_STREAM,
                    TELEMETRA_DURABLE,
                    filled["last_seq"],
                    on_first=lambda: cpu_at_first.append(holder[0].cpu_s() if holder else 0.0),
                    alive=lambda: not holder or holder[0].proc.poll() is None,
                )
            )
            server = await self.start_server(backend, nats=url, wait=False)
            holder.append(server)
            first, last = await watch
            cpu = server.cpu_s() - (cpu_at_first[0] if cpu_at_first else 0.0)
            await self.wait_healthy(server)
            after = await backend.db.exact_counts()
            rss = server.peak_rss_mb()
        finally:
            if server is not None:
                self.stop_server(server)
            self.procs.stop(broker.proc.pid)
        committed = after[0] - before[0]
        seconds = last - first
        ok = committed == self.args.count
        return Run(
            "nats",
            backend.name,
            repeat,
            committed,
            after[1] - before[1],
            seconds,
            None,
            None,
            rss,
            100 * cpu / seconds,
            ok,
            "" if ok else f"LOSS: {committed} of {self.args.count} committed",
        )

    async def bare_jetstream(self, repeat: int) -> Run:
        fleet = next(iter(self.backends.values())).fleet
        broker = self.procs.adopt(start_nats(self.own_dir("nats")))
        url = f"nats://127.0.0.1:{broker.port}"
        try:
            filled = await self.fill_stream(url, "BARE", ["bare.>"], "bare.", fleet)
            consumer = Child(
                self.procs,
                self.workdir,
                "nats-consume",
                "--url",
                url,
                "--stream",
                "BARE",
                "--count",
                self.args.count,
                "--batch",
                1000,
            )
            watch = asyncio.ensure_future(
                self.watch_consumer(url, "BARE", "bare", filled["last_seq"], alive=lambda: consumer.proc.poll() is None)
            )
            first, last = await watch
            result = await consumer.result()
        finally:
            self.procs.stop(broker.proc.pid)
        return Run(
            "bare-jetstream",
            "-",
            repeat,
            result["acked"],
            3 * result["acked"],
            last - first,
            ok=result["acked"] == self.args.count,
        )

    # -- naive baseline ------------------------------------------------------------------------------
    async def naive(self, backend: Backend, repeat: int) -> Run:
        """One INSERT of a message's 3 rows and its own COMMIT per message, what seed code did (minus
        its second commit): PostgreSQL from 64 connections at once (asyncpg pool, autocommit), SQLite
        from one connection (it has one writer anyway) with Telemetra's pragmas."""
        count, devices = self.args.count, len(backend.fleet.device_ids)
        base = datetime.now(timezone.utc)
        latencies: list[float] = []
        if backend.name == "postgres":
            pool = await asyncpg.create_pool(backend.url, min_size=NAIVE_PG_CONNECTIONS, max_size=NAIVE_PG_CONNECTIONS)
            try:
                await pool.execute("DROP TABLE IF EXISTS bench_naive_points")
                await pool.execute(
                    "CREATE TABLE bench_naive_points (device_pk integer NOT NULL, key_id integer "
                    "NOT NULL, ts timestamptz NOT NULL, v_num double precision, "
                    "PRIMARY KEY (device_pk, key_id, ts))"
                )
                sql = "INSERT INTO bench_naive_points VALUES ($1, 1, $2, $3), ($1, 2, $2, $4), ($1, 3, $2, $5)"
                next_msg = 0

                async def worker() -> None:
                    nonlocal next_msg
                    async with pool.acquire() as conn:
                        while next_msg < count:
                            i, next_msg = next_msg, next_msg + 1
                            t0 = time.perf_counter()
                            await conn.execute(sql, i % devices + 1, base + timedelta(microseconds=i), *VALUES.values())
                            latencies.append(time.perf_counter() - t0)

                started = time.perf_counter()
                await asyncio.gather(*(worker() for _ in range(NAIVE_PG_CONNECTIONS)))
                seconds = time.perf_counter() - started
                stored = await pool.fetchval("SELECT count(*) FROM bench_naive_points")
                await pool.execute("DROP TABLE bench_naive_points")
            finally:
                await pool.close()
        else:
            conn = _sqlite_like_telemetra(self.workdir / f"naive-{uuid.uuid4().hex[:6]}.db")
            conn.execute(
                "CREATE TABLE naive_points (device_pk INTEGER NOT NULL, key_id INTEGER NOT NULL, "
                "ts INTEGER NOT NULL, v_num REAL, PRIMARY KEY (device_pk, key_id, ts)) WITHOUT ROWID"
            )
            sql = "INSERT INTO naive_points VALUES (?1, 1, ?2, ?3), (?1, 2, ?2, ?4), (?1, 3, ?2, ?5)"
            base_us = int(base.timestamp() * 1e6)
            started = time.perf_counter()
            for i in range(count):
                t0 = time.perf_counter()
                conn.execute("BEGIN")
                conn.execute(sql, (i % devices + 1, base_us + i, *VALUES.values()))
                conn.execute("COMMIT")
                latencies.append(time.perf_counter() - t0)
            seconds = time.perf_counter() - started
            stored = conn.execute("SELECT count(*) FROM naive_points").fetchone()[0]
            conn.close()
        return Run(
            "naive-insert",
            backend.name,
            repeat,
            count,
            stored,
            seconds,
            _ms(percentile(latencies, 50)),
            _ms(percentile(latencies, 99)),
            ok=stored == 3 * count,
        )

    # -- overload ------------------------------------------------------------------------------------
    async def overload_batch(self, backend: Backend, capacity_points_s: float) -> dict:
        """Open-loop HTTP batch load at twice the measured capacity for --overload-seconds: a request is
        started on schedule whether or not earlier ones were answered. Telemetra should answer the excess
        503 at once and keep its memory flat, not queue it."""
        fleet = backend.fleet
        bodies = self.batch_bodies(fleet)
        points_per_request = self.args.batch_messages * self.args.batch_points
        rate = 2 * capacity_points_s / points_per_request  # requests per second offered
        duration = self.args.overload_seconds
        server = await self.start_server(backend)
        statuses: Counter[int] = Counter()
        latencies: list[float] = []
        samples: list[dict] = []
        outstanding = 0
        max_outstanding = 0
        headers = {"X-API-Key": fleet.tenant_key, "Content-Type": "application/json"}
        try:
            before = await backend.db.committed()
            async with httpx.AsyncClient(
                base_url=server.url,
                timeout=120,
                limits=httpx.Limits(max_connections=2000, max_keepalive_connections=2000),
            ) as client:

                async def send(body: bytes) -> None:
                    nonlocal outstanding, max_outstanding
                    outstanding += 1
                    max_outstanding = max(max_outstanding, outstanding)
                    t0 = time.perf_counter()
                    try:
                        resp = await client.post("/api/v1/telemetry/batch", content=body, headers=headers)
                        statuses[resp.status_code] += 1
                        if resp.status_code == 200:
                            latencies.append(time.perf_counter() - t0)
                    except httpx.HTTPError as exc:
                        statuses[type(exc).__name__] += 1
                    finally:
                        outstanding -= 1

                stop_sampling = asyncio.Event()
                sampler = asyncio.ensure_future(
                    self._sample(
                        server,
                        backend,
                        samples,
                        stop_sampling,
                        lambda: {"outstanding": outstanding, "statuses": dict(statuses)},
                    )
                )
                started = time.perf_counter()
                tasks: set[asyncio.Task] = set()
                sent = 0
                while (elapsed := time.perf_counter() - started) < duration:
                    while sent < int(elapsed * rate) + 1:
                        task = asyncio.ensure_future(send(bodies[sent % len(bodies)]))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                        sent += 1
                    await asyncio.sleep(0.002)
                window = time.perf_counter() - started
                committed_in_window = await backend.db.committed() - before
                if tasks:
                    await asyncio.wait(tasks, timeout=60)
                stop_sampling.set()
                await sampler
            rss_peak = server.peak_rss_mb()
        finally:
            self.stop_server(server)
        return {
            "kind": "http-batch",
            "backend": backend.name,
            "capacity": capacity_points_s,
            "offered_points_s": sent * points_per_request / window,
            "offered_requests": sent,
            "seconds": window,
            "committed_points_s": committed_in_window * self.args.batch_points / window,
            "statuses": {str(k): v for k, v in statuses.items()},
            "max_outstanding": max_outstanding,
            "p50_ms": _ms(percentile(latencies, 50)),
            "p99_ms": _ms(percentile(latencies, 99)),
            "rss_peak_mb": rss_peak,
            "samples": samples,
        }

    async def overload_mqtt(self, backend: Backend, capacity_msg_s: float) -> dict:
        """Paced QoS 1 publishing at twice the measured MQTT capacity for --overload-seconds. The excess must
        wait in the broker (flow control: Telemetra takes at most Receive Maximum unacknowledged
        messages), so Telemetra's memory stays flat while the broker's backlog grows."""
        fleet = backend.fleet
        broker = self.mosquitto()
        samples: list[dict] = []
        server = None
        try:
            server = await self.start_server(backend, mqtt=f"mqtt://127.0.0.1:{broker.port}")
            before = await backend.db.committed()
            stop_sampling = asyncio.Event()
            sampler = asyncio.ensure_future(
                self._sample(
                    server,
                    backend,
                    samples,
                    stop_sampling,
                    lambda: {"broker_rss_mb": proc_status_mb(broker.proc.pid, "VmRSS")},
                )
            )
            # Several publishers: one Python publisher, sharing the 2 cores with Telemetra, PostgreSQL and the
            # broker, got fewer messages to the broker than Telemetra commits, and so overloaded nothing.
            pubs = [
                Child(
                    self.procs,
                    self.workdir,
                    "mqtt-pub",
                    "--port",
                    broker.port,
                    "--devices",
                    fleet.ids_file,
                    "--rate",
                    2 * capacity_msg_s / OVERLOAD_MQTT_PUBLISHERS,
                    "--duration",
                    self.args.overload_seconds,
                    "--inflight",
                    1000,
                )
                for _ in range(OVERLOAD_MQTT_PUBLISHERS)
            ]
            results = [await pub.result(self.args.overload_seconds + 120) for pub in pubs]
            published = {
                "acked": sum(r["acked"] for r in results),
                "first_publish": min(r["first_publish"] for r in results),
                "last_publish": max(r["last_publish"] for r in results),
            }
            committed = await backend.db.committed() - before
            stop_sampling.set()
            await sampler
            rss_peak = server.peak_rss_mb()
        finally:
            if server is not None:
                self.stop_server(server)
            self.procs.stop(broker.proc.pid)
        window = published["last_publish"] - published["first_publish"]
        # Offered: what the broker acknowledged within the window (the publisher drops what it had not yet
        # sent by then). The backlog is what the broker took and Telemetra had not committed.
        return {
            "kind": "mqtt",
            "backend": backend.name,
            "capacity": capacity_msg_s,
            "offered_msg_s": published["acked"] / window,
            "seconds": window,
            "published": published["acked"],
            "committed_msg_s": committed / window,
            "backlog_in_broker": max(0, published["acked"] - committed),
            "rss_peak_mb": rss_peak,
            "samples": samples,
        }

    async def _sample(
        self, server: Server, backend: Backend, samples: list[dict], stop: asyncio.Event, extra: Callable[[], dict]
    ) -> None:
        """Once a second: the server's RSS, its pipeline queue (from /metrics) and the committed count."""
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=5) as client:
            while not stop.is_set():
                queue = None
                with contextlib.suppress(httpx.HTTPError):
                    text = (await client.get(server.url + "/metrics")).text
                    found = re.search(r"^telemetra_ingest_queue_messages (\S+)$", text, re.M)
                    queue = float(found.group(1)) if found else None
                samples.append(
                    {
                        "t": round(time.monotonic() - started, 1),
                        "rss_mb": server.rss_mb(),
                        "queue": queue,
                        "committed": await backend.db.committed(),
                        **extra(),
                    }
                )
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)


def _sqlite_like_telemetra(path: Path) -> sqlite3.Connection:
    """A SQLite connection with the pragmas Telemetra's store uses (WAL, synchronous=NORMAL)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


# -- the run -------------------------------------------------------------------------------------------
CASES = ("http-single", "http-batch", "rules", "mqtt", "nats", "baseline")
# The runs of a Telemetra server.
TELEMETRA_CASES = ("http-single", "http-single-cold", "http-single-half", "http-batch", "rules", "mqtt", "nats")
RULES_PER_TENANT = 10


async def run_cases(bench: Bench, args: argparse.Namespace, runs: list[Run]) -> None:
    cases = [c for c in args.cases if c != "none"]
    backends = list(bench.backends.values())
    for repeat in range(1, args.repeat + 1):
        for case in cases:
            # (case, backend, job): the ceiling first, then Telemetra on each backend, in the same repeat.
            jobs: list[tuple[str, str, Callable[[], Awaitable[Run]]]] = []
            if case == "http-single":
                # Each connection count: the ceiling, then warm and cold on each backend; then the paced run
                # at half of the warm rate this repeat measured at the reference count.
                for conns in args.connections:
                    jobs.append(
                        (at_connections("bare-fastapi", conns), "-", partial(bench.bare_fastapi, repeat, conns))
                    )
                    for b in backends:
                        jobs.append((at_connections(case, conns), b.name, partial(bench.http_single, b, repeat, conns)))
                        jobs.append(
                            (
                                at_connections("http-single-cold", conns),
                                b.name,
                                partial(bench.http_single_cold, b, repeat, conns),
                            )
                        )
                if not args.no_half:
                    for b in backends:
                        jobs.append(("http-single-half", b.name, partial(run_half, bench, b, repeat, runs)))
            elif case == "http-batch":
                for b in backends:
                    if b.name == "postgres":
                        jobs.append(("bare-copy", b.name, partial(bench.bare_copy, b, repeat)))
                    else:
                        jobs.append(("bare-executemany", b.name, partial(bench.bare_executemany, b, repeat)))
                    jobs.append((case, b.name, partial(bench.http_batch, b, repeat)))
            elif case == "rules":
                # Its ceiling is http-batch of the same repeat; run that here too when it is not a case.
                for b in backends:
                    if "http-batch" not in cases:
                        jobs.append(("http-batch", b.name, partial(bench.http_batch, b, repeat)))
                    jobs.append((case, b.name, partial(bench.http_batch, b, repeat, rules=True)))
            elif case == "mqtt":
                jobs.append(("bare-paho", "-", partial(bench.bare_paho, repeat)))
                jobs += [(case, b.name, partial(bench.mqtt, b, repeat)) for b in backends]
            elif case == "nats":
                jobs.append(("bare-jetstream", "-", partial(bench.bare_jetstream, repeat)))
                jobs += [(case, b.name, partial(bench.nats, b, repeat)) for b in backends]
            elif case == "baseline":
                jobs += [("naive-insert", b.name, partial(bench.naive, b, repeat)) for b in backends]
            for name, backend, job in jobs:
                try:
                    if name.partition("@")[0] in TELEMETRA_CASES:
                        await bench.backends[backend].db.empty_telemetry()
                    run = await job()
                except (asyncio.CancelledError, KeyboardInterrupt):
                    raise
                except Exception as exc:  # one broken run must not lose the others' results
                    run = Run(name, backend, repeat, 0, 0, 0.0, ok=False, note=f"{type(exc).__name__}: {exc}"[:300])
                runs.append(run)
                fill_ratios(runs)
                print(
                    text_table(TABLE_HEADER, [cells(run)]).splitlines()[1] + (f"   [{run.note}]" if run.note else ""),
                    flush=True,
                )


async def run_half(bench: Bench, backend: Backend, repeat: int, runs: list[Run]) -> Run:
    """The paced run at half the warm rate of this repeat (at the reference connection count)."""
    warm = next((r for r in runs if (r.case, r.backend, r.repeat) == ("http-single", backend.name, repeat)), None)
    if warm is None or not warm.ok:
        raise RuntimeError("no warm http-single run in this repeat to pace against")
    return await bench.http_single_half(backend, repeat, warm.msg_s)


def medians(runs: list[Run]) -> list[Summary]:
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.case, run.backend), []).append(run)
    return [summarize(group) for group in groups.values()]


# The figures. Floors the issue gives as a multiple of a quoted bare figure are derived from it.
def evaluate_targets(meds: list[Summary], runs: list[Run], overload: list[dict]) -> list[tuple[str, str, str]]:
    by = {(m.case, m.backend): m for m in meds}
    out: list[tuple[str, str, str]] = []

    def check(
        name: str, key: tuple[str, str], ratio_min: float | None, floor: float, rate_attr: str, unit: str
    ) -> None:
        m = by.get(key)
        if m is None:
            out.append((name, "not run", ""))
            return
        rate = getattr(m, rate_attr)
        parts, met = [f"{rate:,.0f} {unit}"], m.ok and rate >= floor
        if ratio_min is not None:
            parts.append(f"{m.ratio:.0%} of {m.ceiling}" if m.ratio is not None else "no ceiling")
            met = met and m.ratio is not None and m.ratio >= ratio_min
        out.append((name, "MET" if met else "NOT MET", ", ".join(parts)))

    for case, shape in (("http-single", "warm"), ("http-single-cold", "cold, right after registration")):
        check(
            f"HTTP single, PostgreSQL, {shape}: >= 60 % of bare FastAPI at 64 connections (goal 75 %) and "
            ">= 2,500 msg/s (10x seed's 250)",
            (case, "postgres"),
            0.60,
            2500,
            "msg_s",
            "msg/s",
        )
    half = by.get(("http-single-half", "postgres"))
    if half is None:
        out.append(("HTTP single, PostgreSQL: p50 < 10 ms at half the saturating rate", "not run", ""))
    else:
        met = half.ok and half.p50_ms is not None and half.p50_ms < 10
        out.append(
            (
                "HTTP single, PostgreSQL: p50 < 10 ms at half the saturating rate",
                "MET" if met else "NOT MET",
                f"p50 {_fmt(half.p50_ms, 1)} ms at {half.msg_s:,.0f} msg/s"
                + (f" ({half.ratio:.0%} of the saturating rate)" if half.ratio is not None else ""),
            )
        )
    for case in ("http-single", "http-single-cold"):
        m = by.get((case, "sqlite"))
        if m is not None:
            ratio = f"{m.ratio:.0%} of {m.ceiling}" if m.ratio is not None else "no ceiling"
            out.append((f"{case}, SQLite (reported)", "—", f"{m.msg_s:,.0f} msg/s, {ratio}"))
    check(
        "HTTP batch, PostgreSQL: >= 60,000 points/s committed (upsert, unique points)",
        ("http-batch", "postgres"),
        None,
        60_000,
        "points_s",
        "points/s",
    )
    check(
        "HTTP batch, SQLite: >= 30,000 points/s committed",
        ("http-batch", "sqlite"),
        None,
        30_000,
        "points_s",
        "points/s",
    )
    check(
        "MQTT QoS 1 -> PostgreSQL: >= 75 % of bare paho -> paho, zero loss (floor 7,500 msg/s: 75 % of the "
        "issue's ~10 k)",
        ("mqtt", "postgres"),
        0.75,
        7_500,
        "msg_s",
        "msg/s",
    )
    check(
        "NATS JetStream -> PostgreSQL: >= 70 % of bare fetch+ack (floor 10,500 msg/s: 70 % of the issue's ~15 k)",
        ("nats", "postgres"),
        0.70,
        10_500,
        "msg_s",
        "msg/s",
    )
    for backend in ("postgres", "sqlite"):
        check(
            f"Rules, {backend}: {RULES_PER_TENANT} rules per tenant cost < 15 % of batch ingest (>= 85 % of "
            f"http-batch)",
            ("rules", backend),
            0.85,
            0,
            "points_s",
            "points/s",
        )
    telemetra = [r for r in runs if r.case.partition("@")[0] in TELEMETRA_CASES and r.rss_mb]
    telemetra_rss = [r.rss_mb for r in telemetra] + [o["rss_peak_mb"] for o in overload if o.get("rss_peak_mb")]
    if telemetra_rss:
        peak = max(telemetra_rss)
        out.append(
            (
                "Peak RSS of a Telemetra process < 300 MB",
                "MET" if peak < 300 else "NOT MET",
                f"highest {peak:.0f} MB over every run",
            )
        )
    for o in overload:
        flat, detail = overload_verdict(o)
        out.append(
            (
                f"2x overload 60 s ({o['kind']}, {o['backend']}): RSS flat, excess refused, not queued",
                "MET" if flat else "NOT MET",
                detail,
            )
        )
    return out


def overload_verdict(o: dict) -> tuple[bool, str]:
    rss = [s["rss_mb"] for s in o["samples"] if s.get("rss_mb")]
    if len(rss) < 10:
        return False, "too few samples"
    # Flat: the last third's peak is within 10 % (or 15 MB) of the peak after the first 10 s.
    settled = max(rss[10 : len(rss) * 2 // 3] or rss)
    late = max(rss[len(rss) * 2 // 3 :])
    flat = late <= max(settled * 1.10, settled + 15)
    if o["kind"] == "http-batch":
        refused = sum(v for k, v in o["statuses"].items() if k == "503")
        detail = (
            f"offered {o['offered_points_s']:,.0f} points/s (2x {o['capacity']:,.0f}), committed "
            f"{o['committed_points_s']:,.0f}/s; {refused:,} of {o['offered_requests']:,} requests answered "
            f"503; answers {o['statuses']}; at most {o['max_outstanding']} requests outstanding; RSS "
            f"{rss[0]:.0f} -> {max(rss):.0f} MB (peak after 10 s {settled:.0f}, last third {late:.0f})"
        )
        flat = flat and refused > 0
    else:
        detail = (
            f"offered {o['offered_msg_s']:,.0f} msg/s taken by the broker (paced at 2x {o['capacity']:,.0f}), "
            f"committed {o['committed_msg_s']:,.0f}/s, {o['backlog_in_broker']:,} left waiting in the broker; "
            f"RSS {rss[0]:.0f} -> {max(rss):.0f} MB (peak after 10 s {settled:.0f}, last third {late:.0f})"
        )
        flat = flat and o["backlog_in_broker"] > 0  # an overload only if the broker had to hold an excess
    return flat, detail


async def run_overload(bench: Bench, args: argparse.Namespace, runs: list[Run]) -> list[dict]:
    """The overload runs (PostgreSQL), against the capacity measured in this invocation, or measured now."""
    backend = bench.backends.get("postgres") or next(iter(bench.backends.values()))
    meds = {(m.case, m.backend): m for m in medians(runs)}
    results = []
    batch = meds.get(("http-batch", backend.name))
    capacity = batch.points_s if batch and batch.ok else (await bench.http_batch(backend, 0)).points_s
    print(f"overload: HTTP batch at 2x {capacity:,.0f} points/s for {args.overload_seconds:.0f} s", flush=True)
    results.append(await bench.overload_batch(backend, capacity))
    print("  " + overload_verdict(results[-1])[1], flush=True)
    mqtt = meds.get(("mqtt", backend.name))
    capacity = mqtt.msg_s if mqtt and mqtt.ok else (await bench.mqtt(backend, 0)).msg_s
    print(f"overload: MQTT at 2x {capacity:,.0f} msg/s for {args.overload_seconds:.0f} s", flush=True)
    results.append(await bench.overload_mqtt(backend, capacity))
    print("  " + overload_verdict(results[-1])[1], flush=True)
    return results


# -- machine and RESULTS.md ----------------------------------------------------------------------------
def _first_line(args: list[str]) -> str:
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


async def machine_info() -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")), "?")
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    try:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
        pg = await conn.fetchval("SHOW server_version")
        settings = {
            r[0]: r[1]
            for r in await conn.fetch(
                "SELECT name, setting FROM pg_settings WHERE name IN ('shared_buffers', 'synchronous_commit', 'fsync')"
            )
        }
        await conn.close()
        pg += (
            f" (fsync {settings.get('fsync')}, synchronous_commit {settings.get('synchronous_commit')}, "
            f"shared_buffers {int(settings.get('shared_buffers', 0)) * 8 // 1024} MB)"
        )
    except (OSError, asyncpg.PostgresError):
        pg = "unreachable"
    return {
        "cpus": f"{os.cpu_count()} ({model})",
        "ram": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": pg,
        "mosquitto": _first_line(["/usr/sbin/mosquitto", "-h"]),
        "nats-server": _first_line(["/usr/sbin/nats-server", "--version"]),
        "wrk": _first_line(["wrk", "--version"]).split(" Copyright")[0],
        "load average at start": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }


NOTES_MARK = "<!-- Everything below this line is kept when bench/ingest.py rewrites the file. -->"


def write_results(
    machine: dict[str, str],
    command: str,
    runs: list[Run],
    overload: list[dict],
    started: datetime,
    args: argparse.Namespace,
) -> None:
    """(Re)write bench/RESULTS.md: a section for the cases and one for the overload runs; a section not
    produced by this invocation is kept from the previous file, and so are the notes at the end."""
    old = RESULTS_MD.read_text() if RESULTS_MD.exists() else ""
    sections = {name: _section(old, name) for name in ("cases", "overload")}
    notes = old.split(NOTES_MARK, 1)[1].strip() if NOTES_MARK in old else ""
    stamp = started.strftime("%Y-%m-%d %H:%M UTC")
    if runs:
        meds = medians(runs)
        body = [
            f"Run {stamp}, {time.strftime('%H:%M', time.gmtime())} UTC end: `{command}`",
            "",
            f"{args.count:,} messages per run, {args.devices:,} devices, batch {args.batch_messages} messages x "
            f"{args.batch_points} values, {args.repeat} repeat(s). Medians over the repeats (peak RSS: the "
            "highest); the ratio is the median of each repeat's ratio to its own ceiling.",
            "",
            md_table(TABLE_HEADER, [cells(m) for m in meds]),
            "",
            "Targets:",
            "",
            md_table(("target", "verdict", "measured (medians)"), [list(t) for t in evaluate_targets(meds, runs, [])]),
            "",
            "<details><summary>Every run</summary>",
            "",
            md_table(("repeat",) + TABLE_HEADER + ("note",), [[str(r.repeat)] + cells(r) + [r.note] for r in runs]),
            "",
            "</details>",
        ]
        sections["cases"] = "\n".join(body)
    if overload:
        body = [f"Run {stamp}: `{command}`", ""]
        for o in overload:
            flat, detail = overload_verdict(o)
            body += [
                f"**{o['kind']}, {o['backend']}** — {'MET' if flat else 'NOT MET'}: {detail}",
                "",
                "RSS / queue samples (every 5th second): "
                + ", ".join(
                    f"{s['t']:.0f}s {s['rss_mb']:.0f} MB q={s['queue'] if s['queue'] is not None else '?'}"
                    + (f" broker {s['broker_rss_mb']:.0f} MB" if s.get("broker_rss_mb") else "")
                    for s in o["samples"][::5]
                    if s.get("rss_mb")
                ),
                "",
            ]
        sections["overload"] = "\n".join(body).rstrip()
    text = [
        "# Ingest benchmark results",
        "",
        "Written by `bench/ingest.py --write-results` (see bench/README.md). All services on this one "
        "machine, shared with other work: figures are noisy.",
        "",
        "Machine: " + "; ".join(f"{k}: {v}" for k, v in machine.items()) + ".",
        "",
        "## Cases",
        "",
        "<!-- section:cases -->",
        sections["cases"] or "(not run yet)",
        "<!-- /section:cases -->",
        "",
        "## Overload",
        "",
        "<!-- section:overload -->",
        sections["overload"] or "(not run yet)",
        "<!-- /section:overload -->",
        "",
        NOTES_MARK,
        "",
        notes,
        "",
    ]
    RESULTS_MD.write_text("\n".join(text).rstrip() + "\n")


def _section(text: str, name: str) -> str:
    found = re.search(rf"<!-- section:{name} -->\n(.*?)\n<!-- /section:{name} -->", text, re.S)
    return found.group(1).strip() if found and "(not run yet)" not in found.group(1) else ""


# -- main ----------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Telemetra ingest benchmark (not a test).", formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)} (or none); default: all"
    )
    parser.add_argument("--backends", default="sqlite,postgres", help="sqlite and/or postgres")
    parser.add_argument("--count", type=int, default=20_000, help="messages per run and case (default 20000)")
    parser.add_argument("--devices", type=int, default=2000, help="registered devices (default 2000)")
    parser.add_argument("--batch-messages", type=int, default=1000, help="messages per batch request")
    parser.add_argument(
        "--batch-points",
        type=int,
        default=5,
        choices=range(1, 11),
        metavar="1-10",
        help="values per batch message (default 5)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of every case (medians are reported)")
    parser.add_argument(
        "--connections",
        default=f"{WRK_CONNECTIONS},256",
        help=f"wrk connection counts of the HTTP single cases (default {WRK_CONNECTIONS},256); "
        f"{WRK_CONNECTIONS} is always run",
    )
    parser.add_argument(
        "--no-half", action="store_true", help="skip the HTTP single run paced at half the saturating rate"
    )
    parser.add_argument("--overload", action="store_true", help="also run 2x overload for --overload-seconds")
    parser.add_argument("--overload-seconds", type=float, default=60)
    parser.add_argument("--timeout", type=float, default=300, help="longest wait for one run, in seconds")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 2000 messages, 200 devices, 1 repeat, 10 s overload"
    )
    parser.add_argument("--write-results", action="store_true", help="(re)write bench/RESULTS.md")
    parser.add_argument("--keep-workdir", action="store_true", help="keep logs and files in the temp directory")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="TELEMETRA_X=VALUE",
        help="extra setting for every Telemetra server (repeatable), for tuning experiments",
    )
    parser.add_argument(
        "--commit",
        default=None,
        help="measure this git revision of telemetra/ (extracted with git archive) instead of the work tree",
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=None,
        help="run `python -m telemetra` from this source tree (e.g. a prototype of a fix) "
        "instead of the installed `telemetra` command",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.count, args.devices, args.repeat, args.overload_seconds = 2000, 200, 1, 10
    if any("=" not in item or not item.startswith("TELEMETRA_") for item in args.server_env):
        parser.error("--server-env takes TELEMETRA_NAME=VALUE")
    args.server_env = dict(item.split("=", 1) for item in args.server_env)
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    try:
        counts = {int(c) for c in args.connections.split(",") if c.strip()}
    except ValueError:
        parser.error("--connections takes comma-separated numbers")
    args.connections = sorted(counts | {WRK_CONNECTIONS})
    unknown = set(args.cases) - set(CASES) - {"none"} | set(args.backends) - {"sqlite", "postgres"}
    if unknown:
        parser.error(f"unknown case or backend: {', '.join(sorted(unknown))}")
    return args


def ensure_wrk(cases: list[str]) -> None:
    """wrk is a Debian package; install it when running as root, otherwise say what is missing."""
    if "http-single" not in cases or shutil.which("wrk"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is missing; installing it (apt-get install wrk)", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False)
    if not shutil.which("wrk"):
        raise SystemExit("error: the http-single case needs wrk: apt-get install wrk (as root)")


def extract_commit(rev: str, workdir: Path) -> tuple[Path, str]:
    """``git archive REV telemetra`` into the work directory: measure a commit, not the moving work tree."""
    sha = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", rev], capture_output=True, text=True, check=True
    ).stdout.strip()
    tree = workdir / f"telemetra-{sha}"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", sha, "telemetra"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return tree, f"commit {sha} (git archive)"


def code_version(source: Path | None) -> str:
    """Which Telemetra is measured: a commit, with a note when telemetra/ has uncommitted changes."""
    tree = source or ROOT
    try:
        commit = subprocess.run(
            ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(tree), "status", "--porcelain", "--", "telemetra"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"source tree {tree} (not a git checkout)"
    where = f" (source tree {tree})" if source else " (work tree)"
    return f"commit {commit}" + (" with uncommitted changes in telemetra/" if dirty else "") + where


async def amain(args: argparse.Namespace, bench: Bench, runs: list[Run], overload: list[dict]) -> None:
    if "postgres" in args.backends:
        await drop_stale_bench_databases()
    for name in args.backends:
        t0 = time.perf_counter()
        await bench.prepare_backend(name)
        print(f"{name}: tenant and {args.devices} devices registered in {time.perf_counter() - t0:.1f} s", flush=True)
    print(text_table(TABLE_HEADER, []), flush=True)
    await run_cases(bench, args, runs)
    if args.overload:
        overload.extend(await run_overload(bench, args, runs))


async def cleanup_databases(bench: Bench) -> None:
    for backend in bench.backends.values():
        with contextlib.suppress(Exception):
            await backend.db.close()
    if bench.pg_database:
        await pg_admin(f'DROP DATABASE IF EXISTS "{bench.pg_database}" WITH (FORCE)')


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM ends the run the way Ctrl-C does: through the clean-up in main()."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ensure_wrk(args.cases)
    for tool in ("/usr/sbin/mosquitto", "/usr/sbin/nats-server"):
        if not Path(tool).exists() and ({"mqtt", "nats"} & set(args.cases) or args.overload):
            raise SystemExit(f"error: {tool} is needed (apt-get install mosquitto nats-server)")
    command = "python bench/ingest.py " + " ".join(sys.argv[1:] if argv is None else argv)
    started = datetime.now(timezone.utc)
    machine = asyncio.run(machine_info())
    workdir = Path(tempfile.mkdtemp(prefix="telemetra-bench-"))
    procs = Processes()
    bench = Bench(args, workdir, procs)
    runs: list[Run] = []
    overload: list[dict] = []
    signal.signal(signal.SIGTERM, _interrupt)
    interrupted = False
    try:
        if args.commit:
            args.source, machine["telemetra"] = extract_commit(args.commit, workdir)
        else:
            machine["telemetra"] = code_version(args.source)
        print("machine: " + "; ".join(f"{k}: {v}" for k, v in machine.items()), flush=True)
        asyncio.run(amain(args, bench, runs, overload))
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: cleaning up", file=sys.stderr, flush=True)
    finally:
        procs.stop_all()
        with contextlib.suppress(Exception):
            asyncio.run(cleanup_databases(bench))
        if args.keep_workdir:
            print(f"logs kept in {workdir}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if runs:
        meds = medians(runs)
        print(f"\nmedians of {args.repeat} repeat(s):")
        print(text_table(TABLE_HEADER, [cells(m) for m in meds]))
        print("\ntargets:")
        for name, verdict, detail in evaluate_targets(meds, runs, overload):
            print(f"  {verdict:8} {name}: {detail}")
    if args.write_results and not interrupted and (runs or overload):
        write_results(machine, command, runs, overload, started, args)
        print(f"\nwritten to {RESULTS_MD.relative_to(ROOT)}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
