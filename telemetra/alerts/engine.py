"""Rule evaluation: on every committed batch (the pipeline's post-commit hook) and on a timer for silence.

Each committed point is evaluated once, by the process that committed it, in time order per device.
Per (rule, device) the engine keeps the window a z-score or a rate needs, rebuilt from the stored points
the first time it is needed (after a start, say), and bounded. Whether an alert is open is kept in the
database; one open alert per (rule, device) is guaranteed there, whichever process raises it. A batch's
alert changes and their notifications are written in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from telemetra.alerts import metrics
from telemetra.alerts.models import AlertChange, Rule, notification_payload
from telemetra.domain.models import Device, TelemetryMessage
from telemetra.domain.rules import (MAX_WINDOW, NoData, SeriesWindow, Threshold, ZScore, clears, fires, needs_history,
                                   window_for)
from telemetra.domain.timeparse import utcnow
from telemetra.store import Store
from telemetra.store.base import HistoryRequest

logger = logging.getLogger(__name__)
__all__ = ["RuleEngine"]

RULES_TTL_S = 5.0  # rules changed by another process are seen within this
OPEN_ALERTS_TTL_S = 5.0
MAX_WINDOWS = 100_000  # (rule, device) windows kept in memory; the least recently used go first
MAX_DEVICES_CACHED = 100_000
NO_HISTORY = SeriesWindow()  # what a threshold or a range is given as its window; never filled


class RuleEngine:
    def __init__(self, store: Store, *, silence_interval_s: float = 10.0) -> None:
        self._store = store
        self.silence_interval_s = silence_interval_s
        self._rules: dict[int, list[Rule]] = {}
        self._plans: dict[int, _TenantPlan] = {}
        self._rules_loaded = 0.0
        self._open: set[tuple[int, int]] = set()
        self._open_loaded = 0.0
        self._windows: OrderedDict[tuple[int, int], SeriesWindow] = OrderedDict()
        self._devices: OrderedDict[int, Device] = OrderedDict()
        self._lock = asyncio.Lock()

    # -- caches ---------------------------------------------------------------------------------------
    def rules_changed(self) -> None:
        """Reload rules (and drop their windows) before the next evaluation."""
        self._rules_loaded = 0.0
        self._windows.clear()

    async def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._rules_loaded > RULES_TTL_S:
            by_tenant: dict[int, list[Rule]] = defaultdict(list)
            for rule in await self._store.alerts.list_rules(None, enabled_only=True):
                by_tenant[rule.tenant_id].append(rule)
            self._rules, self._rules_loaded = dict(by_tenant), now
            self._plans = {tenant_id: _TenantPlan.of(rules) for tenant_id, rules in self._rules.items()}
        if now - self._open_loaded > OPEN_ALERTS_TTL_S:
            self._open, self._open_loaded = await self._store.alerts.open_alert_pairs(), now

    async def _devices_of(self, pks: list[int]) -> dict[int, Device]:
        """The devices of ``pks`` that exist; those not cached yet are read in one query."""
        missing = [pk for pk in pks if pk not in self._devices]
        if missing:
            self._devices.update(await self._store.get_devices_by_pk(missing))
            while len(self._devices) > MAX_DEVICES_CACHED:
                self._devices.popitem(last=False)
        return {pk: self._devices[pk] for pk in pks if pk in self._devices}

    async def _load_windows(self, wanted: dict[tuple[int, int], tuple[Rule, datetime]]) -> dict[tuple[int, int],
                                                                                                 SeriesWindow]:
        """The windows of ``wanted`` ((rule id, device) -> (rule, time of the device's first point in the
        batch)); those not in memory are rebuilt in one query."""
        missing = [(slot, rule, before) for slot, (rule, before) in wanted.items() if slot not in self._windows]
        requests = []
        for (_, pk), rule, before in missing:
            condition = rule.definition.condition
            # From the points stored before this batch: the same window a process that never stopped has.
            if isinstance(condition, ZScore):
                start = before - timedelta(seconds=condition.window_s) if condition.window_s else None
                limit = condition.window or MAX_WINDOW
            else:
                start, limit = None, 1
            requests.append(HistoryRequest(pk, rule.definition.key, start, before, limit))
        histories = await self._store.recent_points(requests) if requests else []
        for (slot, rule, _), history in zip(missing, histories):
            window = window_for(rule.definition)
            for ts, value in reversed(history):
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    window.push(ts, float(value))
            self._windows[slot] = window
        windows = {}
        for slot in wanted:
            self._windows.move_to_end(slot)
            windows[slot] = self._windows[slot]
        while len(self._windows) > MAX_WINDOWS:
            self._windows.popitem(last=False)
        return windows

    # -- evaluation -----------------------------------------------------------------------------------
    async def on_batch(self, messages: list[TelemetryMessage]) -> None:
        """Post-commit hook: evaluate every numeric point of the batch against the rules of its tenant."""
        started = time.perf_counter()
        async with self._lock:
            await self._refresh()
            if not self._rules:
                return
            by_device = _points_by_device(messages)
            devices = await self._devices_of(list(by_device))
            work = []
            for pk, points in by_device.items():
                device = devices.get(pk)
                plan = self._plans.get(device.tenant_id) if device is not None else None
                if plan is not None:
                    work.append((device, _by_key(points), points[0][0], plan))
            # The windows of the whole batch in one query, not one query per rule and device.
            windows = await self._load_windows({
                (rule.id, device.pk): (rule, first_ts) for device, by_key, first_ts, plan in work
                for rule, key, keeps_history in plan.on_points
                if keeps_history and key in by_key and rule.definition.selector.matches(device.id, device.device_type)})
            changes: list[AlertChange] = []
            for device, by_key, _, plan in work:
                changes.extend(self._evaluate_device(device, by_key, plan, windows))
            await self._apply(changes)
        metrics.EVALUATION_SECONDS.observe(time.perf_counter() - started)

    def _evaluate_device(self, device: Device, by_key: dict[str, list[tuple[datetime, float]]], plan: _TenantPlan,
                         windows: dict[tuple[int, int], SeriesWindow]) -> list[AlertChange]:
        changes: list[AlertChange] = []
        for rule in plan.on_silence:
            slot = (rule.id, device.pk)
            if slot in self._open and rule.definition.selector.matches(device.id, device.device_type):
                # Data arrived: the silence is over.
                last_ts = max(values[-1][0] for values in by_key.values())
                changes.append(AlertChange("clear", rule, device.pk, device.id, last_ts, None))
                self._open.discard(slot)
        for rule, key, keeps_history in plan.on_points:
            mine = by_key.get(key)
            if not mine:
                continue  # the rule watches a key this device did not send in this batch
            definition = rule.definition
            if not definition.selector.matches(device.id, device.device_type):
                continue
            slot = (rule.id, device.pk)
            # A threshold or a range looks at the value alone: no window is kept for it.
            window = windows[slot] if keeps_history else NO_HISTORY
            for ts, value in mine:
                if fires(definition, ts, value, window):
                    if slot in self._open:
                        _append_bump(changes, AlertChange("bump", rule, device.pk, device.id, ts, value))
                    else:
                        changes.append(AlertChange("raise", rule, device.pk, device.id, ts, value, 1,
                                                   _message(rule, device, value)))
                        self._open.add(slot)
                elif slot in self._open and clears(definition, ts, value, window):
                    changes.append(AlertChange("clear", rule, device.pk, device.id, ts, value))
                    self._open.discard(slot)
                if keeps_history:
                    window.push(ts, value)
        return changes

    async def check_silence(self, now: datetime | None = None) -> None:
        """Raise a no-data alert for every matching device silent for longer than its rule allows."""
        now = now or utcnow()
        async with self._lock:
            await self._refresh()
            changes = []
            for tenant_id, rules in self._rules.items():
                for rule in rules:
                    condition = rule.definition.condition
                    if not isinstance(condition, NoData):
                        continue
                    cutoff = now - timedelta(seconds=condition.seconds)
                    for pk, device_id, device_type, since in await self._store.alerts.silent_devices(tenant_id, cutoff):
                        if (rule.id, pk) in self._open or not rule.definition.selector.matches(device_id, device_type):
                            continue
                        silent_s = int((now - since).total_seconds())
                        changes.append(AlertChange("raise", rule, pk, device_id, now, None, 1,
                                                   f"{device_id} has sent no data for {silent_s} s "
                                                   f"(rule '{rule.name}': {condition.seconds:g} s)"))
                        self._open.add((rule.id, pk))
            await self._apply(changes)

    async def run_silence_timer(self) -> None:
        while True:
            await asyncio.sleep(self.silence_interval_s)
            try:
                await self.check_silence()
            except Exception:  # a failed pass is retried at the next tick; the timer must not die
                logger.exception("no-data check failed")

    async def _apply(self, changes: list[AlertChange]) -> None:
        if not changes:
            return
        notified = await self._store.alerts.apply_changes(changes, utcnow(), notification_payload)
        for alert in notified:
            metrics.ALERTS.labels(alert.severity, "raised" if alert.status != "cleared" else "cleared").inc()
            logger.info("alert %s %s: rule=%s device=%s", alert.id, alert.status, alert.rule_name, alert.device_id)
        # Another process may have raised or cleared meanwhile: reread the open set soon.
        self._open_loaded = min(self._open_loaded, time.monotonic() - OPEN_ALERTS_TTL_S + 1.0)


def _points_by_device(messages: list[TelemetryMessage]) -> dict[int, list[tuple[datetime, str, float]]]:
    by_device: dict[int, list[tuple[datetime, str, float]]] = defaultdict(list)
    for message in messages:
        for point in message.points:
            value: Any = point.value
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                by_device[message.device_pk].append((point.ts, point.key, float(value)))
    for points in by_device.values():
        points.sort(key=lambda p: p[0])
    return by_device


@dataclass(frozen=True, slots=True)
class _TenantPlan:
    """A tenant's rules as evaluation walks them: those on points with their key, and those on silence."""

    on_points: tuple[tuple[Rule, str, bool], ...]  # (rule, key, whether it keeps a window)
    on_silence: tuple[Rule, ...]

    @classmethod
    def of(cls, rules: list[Rule]) -> _TenantPlan:
        on_points = tuple((r, r.definition.key, needs_history(r.definition)) for r in rules
                          if not r.definition.on_silence)
        return cls(on_points, tuple(r for r in rules if r.definition.on_silence))


def _by_key(points: list[tuple[datetime, str, float]]) -> dict[str, list[tuple[datetime, float]]]:
    """A device's points (in time order) split by key, each key's still in time order."""
    by_key: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for ts, key, value in points:
        by_key[key].append((ts, value))
    return by_key


def _append_bump(changes: list[AlertChange], bump: AlertChange) -> None:
    """Fold a bump into the previous one of the same (rule, device): one UPDATE per batch, not per point."""
    last = changes[-1] if changes else None
    if last is not None and last.kind == "bump" and (last.rule.id, last.device_pk) == (bump.rule.id, bump.device_pk):
        changes[-1] = AlertChange("bump", bump.rule, bump.device_pk, bump.device_id, bump.ts, bump.value,
                                  last.count + 1)
    else:
        changes.append(bump)


def _message(rule: Rule, device: Device, value: float) -> str:
    condition = rule.definition.condition
    if isinstance(condition, Threshold):
        what = f"{condition.op} {condition.value:g}"
    else:
        what = condition.type
    return f"{device.id}: {rule.definition.key} = {value:g} ({what}, rule '{rule.name}')"
