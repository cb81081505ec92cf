"""Rules benchmark (not a test): what evaluating rules adds to the commit of a batch, in process.

    python bench/rules.py                         # PostgreSQL, 1,000 devices, 10 rules, batches of 1,000 x 5 values
    python bench/rules.py --backend sqlite --rules 20

Each batch is committed with `write_telemetry` (what the pipeline's writer does), then handed to the rule
engine's post-commit hook; the medians of both are printed, and their ratio: the share of ingest time the
rules cost. The rules hold for ordinary values (no alert is raised), as they do almost always.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from telemetra.alerts.engine import RuleEngine  # noqa: E402
from telemetra.domain.keys import generate_key, hash_key, visible_prefix  # noqa: E402
from telemetra.domain.models import Point, TelemetryMessage  # noqa: E402
from telemetra.domain.rules import parse_definition  # noqa: E402
from telemetra.gc_tuning import tune_gc  # noqa: E402
from telemetra.settings import load_settings  # noqa: E402
from telemetra.store import NewDevice, NewKey, store_from_settings  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
BENCH_DB = "telemetra_bench_rules"
KEYS = ("temperature", "humidity", "power", "voltage", "current")


def rule_docs(count: int) -> list[dict]:
    """The mix bench/ingest.py uses: thresholds, a range, a z-score, a rate, over the batch's keys."""
    docs = []
    for i in range(count):
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
        docs.append({"key": KEYS[i % len(KEYS)], "condition": condition})
    return docs


def batch(pks: list[int], start: datetime, size: int) -> list[TelemetryMessage]:
    messages = []
    for i in range(size):
        ts = start + timedelta(microseconds=i)
        values = {k: 20.0 + j + (i % 7) * 0.1 for j, k in enumerate(KEYS)}
        messages.append(
            TelemetryMessage(
                device_pk=pks[i % len(pks)],
                ts=ts,
                data=values,
                metadata={},
                type="sensor",
                points=[Point(k, ts, v) for k, v in values.items()],
            )
        )
    return messages


async def main(args: argparse.Namespace) -> None:
    tune_gc()  # what `telemetra serve` and `worker` do: evaluation allocates a lot of short-lived tuples
    if args.backend == "postgres":
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
        await admin.execute(f"CREATE DATABASE {BENCH_DB}")
        await admin.close()
        url = f"postgresql://postgres@127.0.0.1:5432/{BENCH_DB}"
    else:
        url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='telemetra-bench-rules-')) / 'bench.db'}"
    store = store_from_settings(load_settings(database_url=url, log_level="WARNING"))
    try:
        await store.open()
        await store.migrate()
        now = datetime.now(timezone.utc)
        await store.maintain(now)
        tenant = await store.create_tenant("fleet")
        pks = []
        for i in range(args.devices):
            secret = generate_key("device")
            device = await store.create_device(
                NewDevice(id=f"dev-{i:05d}", tenant_id=tenant.id, name=f"dev-{i:05d}"),
                NewKey(kind="device", hash=hash_key(secret), prefix=visible_prefix(secret), tenant_id=tenant.id),
            )
            pks.append(device.pk)
        for i, doc in enumerate(rule_docs(args.rules)):
            await store.alerts.create_rule(tenant.id, f"rule-{i}", parse_definition(doc), True)
        engine = RuleEngine(store)
        await engine.start()
        try:
            write_ms, rules_ms = [], []
            start = now - timedelta(hours=1)
            for n in range(args.warmup + args.batches):
                messages = batch(pks, start + timedelta(seconds=n), args.batch)
                t0 = time.perf_counter()
                await store.write_telemetry(messages, now)
                t1 = time.perf_counter()
                await engine.evaluate(messages)  # the evaluation itself, not the hand-off to its task
                t2 = time.perf_counter()
                if n >= args.warmup:  # the first batches build every (rule, device) window from the store
                    write_ms.append((t1 - t0) * 1000)
                    rules_ms.append((t2 - t1) * 1000)
        finally:
            await engine.stop()
        alerts, _ = await store.alerts.list_alerts(tenant.id)
        write, rules = statistics.median(write_ms), statistics.median(rules_ms)
        print(
            f"{args.backend}, {args.devices} devices, {args.rules} rules, batches of {args.batch} messages x "
            f"{len(KEYS)} values, median of {args.batches}:"
        )
        print(
            f"  commit {write:.1f} ms, rules {rules:.1f} ms per batch: rules add {rules / write:.0%} to the "
            f"commit ({args.batch * len(KEYS) / (rules / 1000):,.0f} points/s evaluated); alerts raised: {len(alerts)}"
        )
    finally:
        await store.close()
        if args.backend == "postgres":
            admin = await asyncpg.connect(PG_ADMIN)
            await admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
            await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--rules", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
