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
from telemetra.domain.rules import (MAX_WINDOW, NoData, SeriesWindow, Threshold, ZScore, clears, fires, may_fire,
                                   needs_history, window_for)
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
            by_device = _series_by_device(messages)
            devices = await self._devices_of(list(by_device))
            tenants: dict[int, list[tuple[Device, _DeviceSeries]]] = defaultdict(list)
            for pk, series in by_device.items():
                device = devices.get(pk)
                if device is not None and device.tenant_id in self._plans:
                    tenants[device.tenant_id].append((device, series))
            # The windows of the whole batch in one query, not one query per rule and device.
            windows = await self._load_windows({
                (rule.id, device.pk): (rule, series.first_ts) for tenant_id, entries in tenants.items()
                for rule, key in self._plans[tenant_id].with_history for device, series in entries
                if key in series.by_key and rule.definition.selector.matches(device.id, device.device_type)})
            open_rules = {rule_id for rule_id, _ in self._open}
            changes: list[AlertChange] = []
            for tenant_id, entries in tenants.items():
                await self._evaluate_tenant(self._plans[tenant_id], entries, windows, open_rules, changes)
            await self._apply(changes)
        metrics.EVALUATION_SECONDS.observe(time.perf_counter() - started)

    async def _evaluate_tenant(self, plan: _TenantPlan, entries: list[tuple[Device, _DeviceSeries]],
                         windows: dict[tuple[int, int], SeriesWindow], open_rules: set[int],
                         changes: list[AlertChange]) -> None:
        for rule in plan.on_silence:
            for device, series in entries:
                slot = (rule.id, device.pk)
                if slot in self._open and rule.definition.selector.matches(device.id, device.device_type):
                    # Data arrived: the silence is over.
                    changes.append(AlertChange("clear", rule, device.pk, device.id, series.last_ts, None))
                    self._open.discard(slot)
        extremes = _extremes(entries, plan.stateless_keys) if plan.stateless else {}
        for rule, key in plan.stateless:
            # Most batches neither cross a threshold nor close an alert: one comparison settles the rule.
            if key not in extremes or (rule.id not in open_rules and not may_fire(rule.definition, *extremes[key])):
                continue
            self._evaluate_rule(rule, key, entries, None, changes)
            await asyncio.sleep(0)
        for rule, key in plan.with_history:
            self._evaluate_rule(rule, key, entries, windows, changes)
            # Evaluation shares the event loop with the writer, which is between two round trips to the
            # database: let it go on after each rule rather than after the whole batch.
            await asyncio.sleep(0)

    def _evaluate_rule(self, rule: Rule, key: str, entries: list[tuple[Device, _DeviceSeries]],
                       windows: dict[tuple[int, int], SeriesWindow] | None, changes: list[AlertChange]) -> None:
        """Evaluate one rule on the points of its key of every device in ``entries``; ``windows`` is None
        for a rule that keeps none (a threshold or a range)."""
        definition = rule.definition
        for device, series in entries:
            mine = series.by_key.get(key)
            if not mine or not definition.selector.matches(device.id, device.device_type):
                continue
            slot = (rule.id, device.pk)
            window = windows[slot] if windows is not None else NO_HISTORY
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
                if windows is not None:
                    window.push(ts, value)

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


@dataclass(slots=True)
class _DeviceSeries:
    """A device's numeric points in a batch, per key in time order."""

    by_key: dict[str, list[tuple[datetime, float]]]

    @property
    def first_ts(self) -> datetime:
        """Of all its points: windows are rebuilt from what was stored before it."""
        return min(samples[0][0] for samples in self.by_key.values())

    @property
    def last_ts(self) -> datetime:
        return max(samples[-1][0] for samples in self.by_key.values())


def _series_by_device(messages: list[TelemetryMessage]) -> dict[int, _DeviceSeries]:
    # Plain dicts and get(): this loop sees every point of every batch.
    grouped: dict[int, dict[str, list[tuple[datetime, float]]]] = {}
    for message in messages:
        by_key = grouped.get(message.device_pk)
        if by_key is None:
            by_key = grouped[message.device_pk] = {}
        for point in message.points:
            value: Any = point.value
            if type(value) is float or (isinstance(value, int) and not isinstance(value, bool)):
                samples = by_key.get(point.key)
                if samples is None:
                    by_key[point.key] = [(point.ts, float(value))]
                else:
                    samples.append((point.ts, float(value)))
    found = {}
    for pk, by_key in grouped.items():
        if not by_key:
            continue
        for samples in by_key.values():
            if len(samples) > 1:
                samples.sort(key=lambda sample: sample[0])  # stable: a repeated time keeps the order sent
        found[pk] = _DeviceSeries(by_key)
    return found


def _extremes(entries: list[tuple[Device, _DeviceSeries]], keys: set[str]) -> dict[str, tuple[float, float]]:
    """The lowest and highest value of each of ``keys`` over the devices of ``entries``."""
    found = {}
    for key in keys:
        values = [value for _, series in entries for _, value in series.by_key.get(key, ())]
        if values:
            found[key] = (min(values), max(values))
    return found


@dataclass(frozen=True, slots=True)
class _TenantPlan:
    """A tenant's rules as evaluation walks them, each with the key it watches."""

    stateless: tuple[tuple[Rule, str], ...]  # thresholds and ranges: the value alone decides
    with_history: tuple[tuple[Rule, str], ...]  # z-scores and rates: they keep a window per device
    on_silence: tuple[Rule, ...]

    @property
    def stateless_keys(self) -> set[str]:
        return {key for _, key in self.stateless}

    @classmethod
    def of(cls, rules: list[Rule]) -> _TenantPlan:
        on_points = [r for r in rules if not r.definition.on_silence]
        return cls(tuple((r, r.definition.key) for r in on_points if not needs_history(r.definition)),
                   tuple((r, r.definition.key) for r in on_points if needs_history(r.definition)),
                   tuple(r for r in rules if r.definition.on_silence))


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
