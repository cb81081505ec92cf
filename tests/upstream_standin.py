"""A stand-in for the public RenderIoTAPI (seed 000's upstream), as a process of its own for `telemetra pull`.

Same routes and shapes as the original (random values by sensor type, `timestamp` naive ISO), with two
differences that tests need: a reading changes once per ``--tick`` seconds (the original makes a new one at every
request), so that polling faster than a tick must not store a reading twice; and ``POST /_mode`` switches the
answers to ``ok``, ``frozen`` (the readings stop changing), ``500``, ``garbage``, ``slow``, or one of ``HOSTILE``. ``GET /_served``
lists every reading it served: ``[[id, timestamp, metrics], ...]``.

    python -m tests.upstream_standin --port 8123 [--tick 1] [--objects client_1:device_1:temperature_sensor,...]
    python -m tests.upstream_standin --port 8123 --generate 1000        (1,000 objects of 10 clients)
    python -m tests.upstream_standin --port 8123 --generate 1000        (1,000 objects of 10 clients)
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ORIGINAL_OBJECTS = [
    ("client_1", "device_1", "temperature_sensor"),
    ("client_1", "device_2", "humidity_sensor"),
    ("client_2", "device_3", "activity_tracker"),
    ("client_2", "device_4", "temperature_sensor"),
    ("client_3", "device_5", "humidity_sensor"),
    ("client_3", "device_6", "activity_tracker"),
]


# Answers a careless or hostile upstream may give (mode name -> body).
HOSTILE = {
    "huge": b"[" + b'{"id": "x", "client": "c"},' * 400_000 + b"{}]",  # ~11 MB
    "deep": b"[" * 5000 + b"]" * 5000,
    "nan": b'[{"id": "x", "client": "c", "n": NaN}]',
    "nul": b'[{"id": "a\\u0000b", "client": "c\\u0000"}]',
}


class Standin:
    def __init__(self, objects: list[tuple[str, str, str]], tick_s: float) -> None:
        self.objects = [{"id": i, "client": c, "type": t} for c, i, t in objects]
        self.tick_s = tick_s
        self.mode = "ok"
        self.frozen_tick: int | None = None
        self.served: dict[tuple[str, str], dict[str, Any]] = {}
        self.lock = threading.Lock()

    def reading(self, obj: dict[str, Any]) -> dict[str, Any]:
        tick = self.frozen_tick if self.frozen_tick is not None else int(time.time() / self.tick_s)
        rng = random.Random(f"{obj['id']}/{tick}")  # one reading per object and tick
        kind = obj["type"]
        stamp = datetime.fromtimestamp(tick * self.tick_s, timezone.utc).replace(tzinfo=None).isoformat()
        metrics = {
            "temperature": round(rng.uniform(20.0, 30.0), 2) if "temperature" in kind else None,
            "humidity": rng.randint(40, 80) if "humidity" in kind else None,
            "battery_level": rng.randint(10, 100),
            "activity_level": rng.randint(0, 100) if "activity" in kind else None,
        }
        with self.lock:
            self.served[(obj["id"], stamp)] = metrics
        return {**obj, "metrics": metrics, "timestamp": stamp}


def _handler(standin: Standin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: Any, raw: bytes | None = None) -> None:
            data = raw if raw is not None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802
            if self.path == "/_mode":
                mode = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                standin.mode = mode
                standin.frozen_tick = int(time.time() / standin.tick_s) if mode == "frozen" else None
                return self._send(200, {"mode": mode})
            self._send(404, {"error": "Not found"})

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/_served":
                with standin.lock:
                    return self._send(200, [[i, ts, m] for (i, ts), m in standin.served.items()])
            if standin.mode == "500":
                return self._send(500, None, b"<html>Internal Server Error</html>")
            if standin.mode == "garbage":
                return self._send(200, None, b'{"iot_objects": [oops')
            if standin.mode in HOSTILE:
                return self._send(200, None, HOSTILE[standin.mode])
            if standin.mode == "slow":
                time.sleep(30)
            parts = [p for p in self.path.split("?")[0].split("/") if p]
            by_id = {o["id"]: o for o in standin.objects}
            if parts == ["iot_objects"]:
                return self._send(200, standin.objects)
            if len(parts) == 3 and parts[:2] == ["iot_objects", "by_client"]:
                mine = [o for o in standin.objects if o["client"] == parts[2]]
                return self._send(200, mine) if mine else self._send(404, {"error": "No devices found for this client"})
            if len(parts) == 2 and parts[0] == "iot_objects":
                if parts[1] not in by_id:
                    return self._send(404, {"error": "Device not found"})
                return self._send(200, standin.reading(by_id[parts[1]]))
            self._send(404, {"error": "Not found"})

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tick", type=float, default=1.0)
    parser.add_argument("--objects", default="")
    parser.add_argument("--generate", type=int, default=0, help="this many objects of 10 clients instead")
    args = parser.parse_args()
    kinds = ("temperature_sensor", "humidity_sensor", "activity_tracker")
    if args.generate:
        objects = [(f"client_{i % 10}", f"obj-{i}", kinds[i % 3]) for i in range(args.generate)]
    elif args.objects:
        objects = [tuple(item.split(":")) for item in args.objects.split(",")]
    else:
        objects = list(ORIGINAL_OBJECTS)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), _handler(Standin(objects, args.tick)))  # type: ignore[arg-type]
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
