"""Group a batch's numeric points the way evaluation walks them: tenant, key, device, in time order."""

from __future__ import annotations

import math
from datetime import datetime
from operator import itemgetter
from typing import Iterable, TypeGuard

from telemetra.alerts.rule_index import TenantRules
from telemetra.domain.models import Device, Point

__all__ = ["GroupedPoints", "Series", "group_points", "is_number"]

Series = list[tuple[datetime, float]]  # a device's (ts, value) points of one key, in time order

_ts_of = itemgetter(0)  # of a (ts, value) point


def is_number(value: object) -> TypeGuard[float]:
    """Tell whether a point's value is one rules look at: an int or a float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class GroupedPoints:
    """A batch's points as evaluation walks them (made by ``group_points``)."""

    __slots__ = ("devices", "by_tenant", "extremes", "last_ts", "messages")

    def __init__(self, devices: dict[int, Device]) -> None:
        self.devices = devices
        # tenant -> key -> device pk -> [(ts, value)] in time order
        self.by_tenant: dict[int, dict[str, dict[int, Series]]] = {}
        # tenant -> key -> [lowest, highest] of the keys not grouped (inf, -inf: the batch has none)
        self.extremes: dict[int, dict[str, list[float]]] = {}
        # device pk -> its newest point, for the devices whose tenant has no-data rules
        self.last_ts: dict[int, datetime] = {}
        self.messages: list[tuple[int, list[Point]]] = []  # (device pk, points), as grouped

    def series_of(self, tenant_id: int, key: str) -> dict[int, Series]:
        """A key left ungrouped, grouped for the tenant's devices: device pk -> [(ts, value)] in time order."""
        per_device: dict[int, Series] = {}
        devices = self.devices
        for pk, points in self.messages:
            device = devices.get(pk)
            if device is None or device.tenant_id != tenant_id:
                continue
            for point in points:
                if point.key == key and is_number(point.value):
                    per_device.setdefault(pk, []).append((point.ts, float(point.value)))
        for values in per_device.values():
            values.sort(key=_ts_of)  # stable: points of the same instant keep their order
        return per_device


def group_points(
    messages: Iterable[tuple[int, list[Point]]],
    devices: dict[int, Device],
    rules: dict[int, TenantRules],
    open_rules: set[int],
) -> GroupedPoints:
    """The numeric points of ``devices`` that some rule of their tenant (``rules``) watches, grouped as
    evaluation walks them: tenant -> key -> device -> [(ts, value)] in time order. ``messages`` are (device pk,
    points) pairs. Every point of a batch passes here: the loop does as little as it can per point (a
    series per watched key exists beforehand; points are doubles already, other numbers are rare).

    A key watched only by thresholds and ranges with no alert open (``open_rules``: the ids of the rules
    that have one) is not grouped: only its lowest and highest value are kept, which is all their screens
    need; ``GroupedPoints.series_of`` groups it when a screen lets something through, which is rare."""
    grouped = GroupedPoints(devices)
    by_tenant, extremes = grouped.by_tenant, grouped.extremes
    # pk -> its tenant's series (one per grouped key) and lowest and highest values (per screened key)
    watch: dict[int, tuple[dict[str, dict], dict[str, list[float]]]] = {}
    silent_tenants = set()
    for pk, device in devices.items():
        tenant_id = device.tenant_id
        series = by_tenant.get(tenant_id)
        if series is None:
            tenant_rules = rules[tenant_id]
            screened = extremes[tenant_id] = {
                key: [math.inf, -math.inf] for key in tenant_rules.screened_keys(open_rules)
            }
            series = by_tenant[tenant_id] = {key: {} for key in tenant_rules.keys if key not in screened}
            if tenant_rules.silence:
                silent_tenants.add(tenant_id)
        watch[pk] = (series, extremes[tenant_id])
    several = False  # some device has several points of a key: its series may need sorting
    messages = grouped.messages = list(messages)
    for pk, points in messages:
        watched = watch.get(pk)
        if watched is None:
            continue
        series, screened = watched
        for key, ts, value in points:
            per_device = series.get(key)
            if per_device is None:
                bounds = screened.get(key)
                if bounds is None:
                    continue
                if value.__class__ is not float:
                    if not is_number(value):
                        continue
                    value = float(value)
                if value < bounds[0]:
                    bounds[0] = value
                if value > bounds[1]:
                    bounds[1] = value
                continue
            if value.__class__ is not float:
                if not is_number(value):
                    continue
                value = float(value)
            values = per_device.get(pk)
            if values is None:
                per_device[pk] = [(ts, value)]
            else:
                values.append((ts, value))
                several = True
    if silent_tenants:  # the newest point of each device whose tenant has no-data rules
        last_ts = grouped.last_ts
        for pk, points in messages:
            if pk in devices and devices[pk].tenant_id in silent_tenants:
                for point in points:
                    if is_number(point.value) and (pk not in last_ts or point.ts > last_ts[pk]):
                        last_ts[pk] = point.ts
    for series in by_tenant.values():
        for key in [key for key, per_device in series.items() if not per_device]:
            del series[key]
        if several:
            for per_device in series.values():
                for values in per_device.values():
                    if len(values) > 1:
                        values.sort(key=_ts_of)  # stable: points of the same instant keep their order
    return grouped
