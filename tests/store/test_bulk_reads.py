"""Reads of many devices or series in one call (what rule evaluation needs per batch), on both backends."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from telemetra.domain.models import Point, TelemetryMessage
from telemetra.store import NewDevice, NewKey, Store
from telemetra.store.base import HistoryRequest

T0 = datetime(2026, 11, 2, 8, tzinfo=timezone.utc)


async def _devices(store: Store, count: int) -> list[int]:
    tenant = await store.create_tenant("acme")
    pks = []
    for i in range(count):
        device = await store.create_device(
            NewDevice(id=f"d{i}", tenant_id=tenant.id, name=f"d{i}"),
            NewKey(kind="device", hash=bytes([i]) * 32, prefix="p", tenant_id=tenant.id),
        )
        pks.append(device.pk)
    return pks


def _msg(pk: int, ts: datetime, **values) -> TelemetryMessage:
    return TelemetryMessage(
        device_pk=pk,
        ts=ts,
        data=values,
        metadata={},
        type="sensor",
        points=[Point(k, ts, v) for k, v in values.items()],
    )


async def test_devices_by_pk_leaves_out_unknown_ones(store: Store) -> None:
    a, b = await _devices(store, 2)
    found = await store.get_devices_by_pk([b, a, a, b + 1000])
    assert sorted(found) == sorted([a, b]) and found[a].id == "d0" and found[b].id == "d1"
    assert await store.get_devices_by_pk([]) == {}


async def test_recent_points_answers_each_request_newest_first(store: Store) -> None:
    a, b = await _devices(store, 2)
    await store.write_telemetry(
        [_msg(a, T0 + timedelta(seconds=i), t=float(i), s="x") for i in range(10)]
        + [_msg(b, T0 + timedelta(seconds=i), t=100.0 + i) for i in range(3)],
        T0,
    )
    before = T0 + timedelta(seconds=8)
    found = await store.recent_points(
        [
            HistoryRequest(a, "t", None, before, 3),  # the newest 3 before 8 s
            HistoryRequest(a, "t", T0 + timedelta(seconds=6), before, 100),  # a time window
            HistoryRequest(b, "t", None, before, 10),  # fewer than the limit
            HistoryRequest(a, "unknown", None, before, 10),  # a key never sent
            HistoryRequest(b, "s", None, before, 10),  # a key of another device
            HistoryRequest(a, "s", None, before, 1),  # a string value
        ]
    )
    values = [[v for _, v in points] for points in found]
    assert values == [[7.0, 6.0, 5.0], [7.0, 6.0], [102.0, 101.0, 100.0], [], [], ["x"]]
    assert found[0][0][0] == T0 + timedelta(seconds=7)
    assert await store.recent_points([]) == []
