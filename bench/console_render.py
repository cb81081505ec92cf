"""Console render benchmark (not a test): the Devices page over 100,000 devices of one tenant, in Chromium.

    python bench/console_render.py [--devices 100000] [--repeat 5] [--overview-png docs/console.png]

A `telemetra serve` on a fresh SQLite database, its devices written straight into the database (as
`bench/console_devices.py` does), a user signed in once; then, per round, a fresh page load of
/console/devices timed from navigation start to the first 50 rows drawn (the shell, the scripts, the session
check, the fleet answer and the DOM), and the same for the Overview's chart. Debian's Chromium, headless.

`--overview-png` also writes the Overview as the README shows it: a few devices send values through the tenant's
gateway route, a rule raises alerts, and the last 24 hours of per-minute counts are filled in as a day's curve
(the counts the writer keeps; the server reads them as it would its own).
"""

from __future__ import annotations

import argparse
import math
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.console_devices import ADMIN_KEY, _fill_sqlite  # noqa: E402  (the same 100,000 devices)
from tests.servers import Server  # noqa: E402  (a serve process on a free port, stopped by its PID)

CHROMIUM = "/usr/bin/chromium"
EMAIL, PASSWORD = "bench@example.com", "bench-password-123"


def _timed_load(page, url: str, ready: str) -> float:
    started = time.perf_counter()
    page.goto(url)
    page.locator(ready).first.wait_for()
    return (time.perf_counter() - started) * 1000


def _day_curve(path: str, tenant_id: int) -> None:
    """24 hours of per-minute message counts shaped like a day (more in the afternoon), with some noise."""
    now_minute = int(time.time() // 60) * 60
    rows = []
    for back in range(-5, 24 * 60):  # and the next minutes: the page is drawn a little later
        at = now_minute - back * 60
        moment = datetime.fromtimestamp(at, timezone.utc)
        hour = moment.hour + moment.minute / 60
        level = (
            420 + 260 * math.sin((hour - 10) / 24 * 2 * math.pi) + 25 * math.sin(back / 11) + 10 * math.sin(back / 3)
        )
        rows.append((tenant_id, at * 1_000_000, int(level)))
    conn = sqlite3.connect(path, timeout=60)
    with conn:
        conn.executemany("INSERT OR REPLACE INTO minute_counts (tenant_id, minute, messages) VALUES (?, ?, ?)", rows)
    conn.close()


def _some_traffic(http: httpx.Client, headers: dict) -> None:
    rule = {
        "name": "boiler too hot",
        "key": "t",
        "severity": "critical",
        "condition": {"type": "threshold", "op": ">", "value": 90},
    }
    http.post("/api/v1/rules", headers=headers, json=rule).raise_for_status()
    rule = {
        "name": "humidity high",
        "key": "h",
        "severity": "warning",
        "condition": {"type": "threshold", "op": ">", "value": 80},
    }
    http.post("/api/v1/rules", headers=headers, json=rule).raise_for_status()
    for n, sends in enumerate((9, 7, 6, 4, 3)):
        for i in range(sends):
            body = {"data": {"t": 60 + 8 * i + n, "h": 50 + 7 * i}}
            http.post(f"/api/v1/devices/dev-{n * 10:06d}/telemetry", headers=headers, json=body).raise_for_status()


def main(count: int, repeat: int, overview_png: str | None) -> None:
    workdir = tempfile.mkdtemp(prefix="telemetra-bench-render-")
    path = f"{workdir}/render.db"
    server = Server(
        f"sqlite:///{path}", env={"TELEMETRA_ADMIN_KEY": ADMIN_KEY, "TELEMETRA_RATE_LIMITS_ENABLED": "false"}
    )
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            made = http.post("/api/v1/admin/tenants", headers={"X-API-Key": ADMIN_KEY}, json={"name": "Acme plant"})
            tenant_id, headers = made.json()["tenant"]["id"], {"X-API-Key": made.json()["api_key"]}
            user = {"email": EMAIL, "name": "Dana", "role": "admin", "password": PASSWORD}
            http.post("/api/v1/users", headers=headers, json=user).raise_for_status()
            started = time.perf_counter()
            _fill_sqlite(path, tenant_id, count)
            print(f"{count} devices written in {time.perf_counter() - started:.1f} s")
            if overview_png:
                _some_traffic(http, headers)
                _day_curve(path, tenant_id)
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.goto(server.url + "/console/")
            page.get_by_label("E-mail").fill(EMAIL)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("navigation", name="main").wait_for()
            for name, url, ready in (
                ("Devices page, first 50 rows", "/console/devices", "tbody tr:nth-child(50)"),
                ("Overview with its chart", "/console/", ".overview svg.chart"),
            ):
                _timed_load(page, server.url + url, ready)  # warm-up
                times = [_timed_load(page, server.url + url, ready) for _ in range(repeat)]
                print(f"  {name:30} median {statistics.median(times):7.1f} ms   max {max(times):7.1f} ms")
            if overview_png:
                page.goto(server.url + "/console/")
                page.locator(".overview svg.chart").wait_for()
                page.wait_for_timeout(300)
                page.screenshot(path=overview_png)
                print(f"  overview written to {overview_png}")
            browser.close()
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--overview-png", default=None)
    args = parser.parse_args()
    main(args.devices, args.repeat, args.overview_png)
