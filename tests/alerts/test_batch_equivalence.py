"""A batch evaluated at once raises, bumps and clears exactly the alerts its messages raise one at a time.

Evaluation takes shortcuts per batch (points grouped once, thresholds and ranges screened by the batch's
lowest and highest value and not grouped at all when nothing passes, quiet points pushed in one loop): two
tenants with the same devices and rules get the same messages, one as a single batch, the other message by
message, and must end with the same alerts."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from telemetra.alerts.engine import RuleEngine
from telemetra.domain.keys import generate_key, hash_key, visible_prefix
from telemetra.domain.models import Point, TelemetryMessage
from telemetra.domain.rules import parse_definition
from telemetra.store import NewDevice, NewKey, Store

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
DEVICES = 6
RULES = {
    "hot boiler": {
        "key": "temperature",
        "condition": {"type": "threshold", "op": ">", "value": 30},
        "clear": {"type": "threshold", "op": "<", "value": 28},
        "selector": {"device_type": "boiler"},
    },
    "frozen": {"key": "temperature", "condition": {"type": "threshold", "op": "<=", "value": 3}},
    "power out of range": {
        "key": "power",
        "condition": {"type": "range", "low": 0, "high": 100},
        "selector": {"device_ids": ["{prefix}-0", "{prefix}-2"]},
    },
    "humidity at 50": {"key": "humidity", "condition": {"type": "threshold", "op": "==", "value": 50}},
    "voltage spike": {"key": "voltage", "condition": {"type": "zscore", "k": 2, "window": 5}},
    "current jump": {"key": "current", "condition": {"type": "rate", "max_per_s": 10}},
}


async def _tenant(store: Store, name: str) -> tuple[int, list[int]]:
    tenant = await store.create_tenant(name)
    pks = []
    for i in range(DEVICES):
        secret = generate_key("device")
        device = await store.create_device(
            NewDevice(
                id=f"{name}-{i}", tenant_id=tenant.id, name=f"{name}-{i}", device_type="boiler" if i % 2 else "meter"
            ),
            NewKey(kind="device", hash=hash_key(secret), prefix=visible_prefix(secret), tenant_id=tenant.id),
        )
        pks.append(device.pk)
    for rule_name, doc in RULES.items():
        doc = {
            **doc,
            "selector": {
                k: [v.format(prefix=name) for v in values] if isinstance(values, list) else values
                for k, values in doc.get("selector", {}).items()
            },
        }
        await store.alerts.create_rule(tenant.id, rule_name, parse_definition(doc), True)
    return tenant.id, pks


def _values(rnd: random.Random, step: int) -> dict[str, float]:
    """Mostly ordinary values, now and then one that some rule fires on."""
    return {
        "temperature": rnd.choice([rnd.uniform(10, 27), rnd.uniform(27, 35), rnd.uniform(0, 4)]),
        "power": rnd.uniform(-5, 105) if rnd.random() < 0.2 else rnd.uniform(10, 90),
        "humidity": rnd.choice([49.0, 50.0, 51.0, 55.0]),
        "voltage": 230 + rnd.gauss(0, 1) + (25 if rnd.random() < 0.05 else 0),
        "current": 5 + step % 3 + (40 if rnd.random() < 0.05 else 0),
    }


def _messages(pks: list[int], plan: list[tuple[int, dict[str, float]]]) -> list[TelemetryMessage]:
    messages = []
    for n, (device, values) in enumerate(plan):
        ts = T0 + timedelta(seconds=n)  # in time order: one at a time sees them as the batch orders them
        messages.append(
            TelemetryMessage(
                device_pk=pks[device],
                ts=ts,
                data=values,
                metadata={},
                type="sensor",
                points=[Point(key, ts, value) for key, value in values.items()],
            )
        )
    return messages


def _outcome(alerts: list) -> list[tuple]:
    return sorted(
        (
            a.rule_name,
            a.device_id.split("-")[-1],
            a.status,
            a.count,
            a.first_value,
            a.last_value,
            a.first_ts,
            a.last_ts,
            a.cleared_at is not None,
        )
        for a in alerts
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_batch_at_once_ends_as_its_messages_one_at_a_time(store: Store, seed: int) -> None:
    rnd = random.Random(seed)
    whole, whole_pks = await _tenant(store, "whole")
    single, single_pks = await _tenant(store, "single")
    plan = [(rnd.randrange(DEVICES), _values(rnd, step)) for step in range(300)]
    engine = RuleEngine(store)
    await engine.start()
    try:
        for part in range(0, len(plan), 100):  # three batches, so that alerts opened earlier are screened too
            await engine.evaluate(_messages(whole_pks, plan)[part : part + 100])
        for message in _messages(single_pks, plan):
            await engine.evaluate([message])
    finally:
        await engine.stop()
    at_once = _outcome((await store.alerts.list_alerts(whole, limit=1000))[0])
    one_by_one = _outcome((await store.alerts.list_alerts(single, limit=1000))[0])
    assert at_once == one_by_one
    # The plan exercises every rule: each one raised something, and some alert cleared.
    assert {row[0] for row in at_once} == set(RULES) and any(row[8] for row in at_once)
