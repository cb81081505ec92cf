"""Keep the windows of earlier points that z-scores and rates need, one per (window spec, device), bounded."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Callable

from telemetra.alerts.grouping import GroupedPoints, Series, is_number
from telemetra.alerts.rule_index import TenantRules, WindowGroup
from telemetra.domain.alerts import Rule
from telemetra.domain.models import Device
from telemetra.domain.rules import MAX_WINDOW, SeriesWindow, ZScore, window_for
from telemetra.store import Store
from telemetra.store.base import HistoryRequest

__all__ = ["SeriesWindows", "MAX_WINDOWS"]

MAX_WINDOWS = 100_000  # (rule, device) windows kept in memory; the least recently used go first
# Devices a window group's fast pass takes before giving the event loop back: a few milliseconds, so that
# a commit waiting for its next step is not held behind a whole batch's evaluation.
YIELD_EVERY_DEVICES = 250


class SeriesWindows:
    """The windows of the devices this process evaluates, by (window spec, device pk), least recently used
    first. A window missing from memory (after a start, a change of owner or of rules) is rebuilt from the
    points stored before the batch that needs it: the same window a process that never stopped has."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._by_slot: OrderedDict[tuple[str, int], SeriesWindow] = OrderedDict()  # (window spec, device pk)
        self._stale = False

    def __len__(self) -> int:
        return len(self._by_slot)

    def drop_all_later(self) -> None:
        """Drop every window at the next ``drop_if_stale`` (the rules changed): an evaluation may be half-way
        through a batch right now, so they are dropped where the caller knows none is."""
        self._stale = True

    def drop_if_stale(self) -> None:
        if self._stale:
            self._by_slot.clear()
            self._stale = False

    def drop_devices(self, leaving: Callable[[int], bool]) -> None:
        """Drop the windows of the devices ``leaving`` tells (by pk): their new owner rebuilds them."""
        for slot in [slot for slot in self._by_slot if leaving(slot[1])]:
            del self._by_slot[slot]

    def forget_old(self) -> None:
        """Keep at most MAX_WINDOWS windows, dropping the least recently used (after a batch: never one it
        is using)."""
        while len(self._by_slot) > MAX_WINDOWS:
            self._by_slot.popitem(last=False)

    async def load_missing(self, grouped: GroupedPoints, rules: dict[int, TenantRules]) -> None:
        """Rebuild, in one query, the windows a batch needs and memory lacks (after a start, a new owner):
        one query per (rule, device) would hold the first batch up for seconds."""
        missing: dict[tuple[str, int], tuple[WindowGroup, datetime]] = {}
        windows = self._by_slot
        for tenant_id, series in grouped.by_tenant.items():
            windowed = rules[tenant_id].windowed
            for key, per_device in series.items():
                for group in windowed.get(key, ()):
                    for pk, values in per_device.items():
                        if (group.spec, pk) in windows:
                            continue
                        device = grouped.devices[pk]
                        if group.selects_all or group.matching(device):
                            missing[(group.spec, pk)] = (group, values[0][0])  # the window ends before the first point
        if not missing:
            return
        requests = [
            HistoryRequest(pk, group.key, *_history_span(group.rule, before))
            for (_, pk), (group, before) in missing.items()
        ]
        for (slot, (group, _)), history in zip(missing.items(), await self._store.recent_points(requests), strict=True):
            windows[slot] = _window_of(group.rule, history)

    async def get(self, group: WindowGroup, device: Device, before: datetime) -> SeriesWindow:
        """The device's window of ``group``, rebuilt from the points stored before ``before`` if missing."""
        slot = (group.spec, device.pk)
        window = self._by_slot.get(slot)
        if window is not None:
            self._by_slot.move_to_end(slot)
            return window
        (history,) = await self._store.recent_points(
            [HistoryRequest(device.pk, group.key, *_history_span(group.rule, before))]
        )
        window = self._by_slot[slot] = _window_of(group.rule, history)
        return window

    async def push_quiet(self, group: WindowGroup, per_device: dict[int, Series]) -> dict[int, Series]:
        """The fast pass of z-scores or rates sharing a window, none with an alert open, every device
        selected: push each device's quiet points onto its window. Return what is left to evaluate point by
        point: the points from the first that fires on, and the devices whose window is not in memory."""
        rest: dict[int, Series] = {}
        spec, quiet, windows_get, touch = group.spec, group.quiet, self._by_slot.get, self._by_slot.move_to_end
        for done_devices, (pk, values) in enumerate(per_device.items(), 1):
            if not done_devices % YIELD_EVERY_DEVICES:
                await asyncio.sleep(0)
            window = windows_get((spec, pk))
            if window is None:
                rest[pk] = values
                continue
            touch((spec, pk))
            done = quiet(window, values)
            if done < len(values):
                rest[pk] = values[done:]
        return rest


def _history_span(rule: Rule, before: datetime) -> tuple[datetime | None, datetime, int]:
    """(start, before, limit) of the stored points that make up the rule's window before ``before``."""
    condition = rule.definition.condition
    if isinstance(condition, ZScore):
        start = before - timedelta(seconds=condition.window_s) if condition.window_s else None
        return start, before, condition.window or MAX_WINDOW
    return None, before, 1  # a rate needs the previous value only


def _window_of(rule: Rule, history: list) -> SeriesWindow:
    """A rule's window filled with ``history`` (newest first, as stored)."""
    window = window_for(rule.definition)
    for ts, value in reversed(history):
        if is_number(value):
            window.push(ts, float(value))
    return window
