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
from datetime import datetime, timedelta
from typing import Any

from telemetra.alerts import metrics
from telemetra.alerts.models import AlertChange, Rule, notification_payload
from telemetra.domain.models import Device, TelemetryMessage
from telemetra.domain.rules import MAX_WINDOW, NoData, SeriesWindow, Threshold, ZScore, clears, fires, window_for
from telemetra.domain.timeparse import utcnow
from telemetra.store import Store

logger = logging.getLogger(__name__)
__all__ = ["RuleEngine"]

RULES_TTL_S = 5.0  # rules changed by another process are seen within this
OPEN_ALERTS_TTL_S = 5.0
MAX_WINDOWS = 100_000  # (rule, device) windows kept in memory; the least recently used go first
MAX_DEVICES_CACHED = 100_000


class RuleEngine:
    def __init__(self, store: Store, *, silence_interval_s: float = 10.0) -> None:
        self._store = store
        self.silence_interval_s = silence_interval_s
        self._rules: dict[int, list[Rule]] = {}
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
        if now - self._open_loaded > OPEN_ALERTS_TTL_S:
            self._open, self._open_loaded = await self._store.alerts.open_alert_pairs(), now

    async def _device(self, pk: int) -> Device | None:
        device = self._devices.get(pk)
        if device is None:
            device = await self._store.get_device_by_pk(pk)
            if device is None:
                return None
            self._devices[pk] = device
            if len(self._devices) > MAX_DEVICES_CACHED:
                self._devices.popitem(last=False)
        return device

    async def _window(self, rule: Rule, device: Device, before: datetime) -> SeriesWindow:
        slot = (rule.id, device.pk)
        window = self._windows.get(slot)
        if window is not None:
            self._windows.move_to_end(slot)
            return window
        window = window_for(rule.definition)
        condition, key = rule.definition.condition, rule.definition.key
        # Rebuilt from the points stored before this batch: the same window a process that never stopped has.
        if isinstance(condition, ZScore):
            start = before - timedelta(seconds=condition.window_s) if condition.window_s else None
            limit = condition.window or MAX_WINDOW
        else:
            start, limit = None, 1
        history = (await self._store.query_points(device.pk, [key], start, before, limit, True)).get(key, [])
        for ts, value in reversed(history):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                window.push(ts, float(value))
        self._windows[slot] = window
        if len(self._windows) > MAX_WINDOWS:
            self._windows.popitem(last=False)
        return window

    # -- evaluation -----------------------------------------------------------------------------------
    async def on_batch(self, messages: list[TelemetryMessage]) -> None:
        """Post-commit hook: evaluate every numeric point of the batch against the rules of its tenant."""
        started = time.perf_counter()
        async with self._lock:
            await self._refresh()
            if not self._rules:
                return
            changes: list[AlertChange] = []
            for pk, points in _points_by_device(messages).items():
                device = await self._device(pk)
                if device is None or device.tenant_id not in self._rules:
                    continue
                changes.extend(await self._evaluate_device(device, points, self._rules[device.tenant_id]))
            await self._apply(changes)
        metrics.EVALUATION_SECONDS.observe(time.perf_counter() - started)

    async def _evaluate_device(self, device: Device, points: list[tuple[datetime, str, float]],
                               rules: list[Rule]) -> list[AlertChange]:
        changes: list[AlertChange] = []
        first_ts = points[0][0]
        for rule in rules:
            definition = rule.definition
            if not definition.selector.matches(device.id, device.device_type):
                continue
            slot = (rule.id, device.pk)
            if definition.on_silence:
                if slot in self._open:  # data arrived: the silence is over
                    changes.append(AlertChange("clear", rule, device.pk, device.id, points[-1][0], None))
                    self._open.discard(slot)
                continue
            mine = [(ts, v) for ts, key, v in points if key == definition.key]
            if not mine:
                continue
            window = await self._window(rule, device, first_ts)
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
