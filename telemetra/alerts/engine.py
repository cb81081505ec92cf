"""Rule evaluation: on every committed batch (the pipeline's post-commit hook) and on a timer for silence.

Each (rule, device) is evaluated by one process: the owner of the device's shard (``alerts.ownership``).
After a commit, the points of devices this process owns are evaluated at once, in time order per device;
the others are queued in the database for their owner, which takes them within ``inbox_interval_s``.
Per (rule, device) the owner keeps the window a z-score or a rate needs, rebuilt from the stored points
the first time it is needed (after a start or a change of owner), and bounded. Whether an alert is open
is kept in the database; one open alert per (rule, device) is guaranteed there. A batch's alert changes
and their notifications are written in one transaction.

An engine that was never started (a tool or a test driving ``on_batch`` by hand) evaluates everything it
is given itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, defaultdict
from datetime import datetime, timedelta
from typing import Any, Callable

from telemetra.alerts import metrics
from telemetra.alerts.models import AlertChange, Rule, notification_payload
from telemetra.alerts.ownership import ShardOwnership
from telemetra.domain.models import Device, TelemetryMessage
from telemetra.domain.rules import (MAX_WINDOW, SeriesWindow, Threshold, ZScore, clears, fires,
                                    needs_window, value_test, window_for)
from telemetra.domain.timeparse import utcnow
from telemetra.registry.presence import PresenceChange
from telemetra.store import Store
from telemetra.store.base import HistoryRequest

logger = logging.getLogger(__name__)
__all__ = ["RuleEngine"]

RULES_TTL_S = 5.0  # rules changed by another process are seen within this
OPEN_ALERTS_TTL_S = 5.0
MAX_WINDOWS = 100_000  # (rule, device) windows kept in memory; the least recently used go first
MAX_DEVICES_CACHED = 100_000
INBOX_BATCH = 5000
HANDOFF_BATCHES = 8  # committed batches waiting for evaluation, at most


class RuleEngine:
    def __init__(self, store: Store, *, silence_interval_s: float = 10.0, inbox_interval_s: float = 0.1,
                 ownership: ShardOwnership | None = None) -> None:
        self._store = store
        self.silence_interval_s = silence_interval_s
        self.inbox_interval_s = inbox_interval_s
        self.ownership = ownership or ShardOwnership(store)
        self._tasks: list[asyncio.Task] = []
        self._batches: asyncio.Queue[list[TelemetryMessage]] | None = None
        self._rules: dict[int, TenantRules] = {}
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
            by_tenant: dict[int, TenantRules] = defaultdict(TenantRules)
            for rule in await self._store.alerts.list_rules(None, enabled_only=True):
                by_tenant[rule.tenant_id].add(rule)
            self._rules, self._rules_loaded = dict(by_tenant), now
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

    async def _load_windows(self, entries: list[tuple[Device, list[tuple[datetime, str, float]]]]) -> None:
        """Rebuild, in one query, the windows a batch needs and memory lacks (after a start, a new owner):
        one query per (rule, device) would hold the first batch up for seconds."""
        missing: dict[tuple[int, int], tuple[Rule, datetime]] = {}
        for device, points in entries:
            rules = self._rules[device.tenant_id]
            for ts, key, _ in points:  # in time order: the first point of a key is the window's end
                for rule in rules.windowed.get(key, ()):
                    slot = (rule.id, device.pk)
                    if (slot not in self._windows and slot not in missing
                            and rule.definition.selector.matches(device.id, device.device_type)):
                        missing[slot] = (rule, ts)
        if not missing:
            return
        requests = [HistoryRequest(pk, rule.definition.key, *_history_span(rule, before))
                    for (_, pk), (rule, before) in missing.items()]
        for (slot, (rule, _)), history in zip(missing.items(), await self._store.recent_points(requests)):
            self._windows[slot] = _window_of(rule, history)
        while len(self._windows) > MAX_WINDOWS:
            self._windows.popitem(last=False)

    async def _window(self, rule: Rule, device: Device, before: datetime) -> SeriesWindow:
        slot = (rule.id, device.pk)
        window = self._windows.get(slot)
        if window is not None:
            self._windows.move_to_end(slot)
            return window
        # Rebuilt from the points stored before this batch: the same window a process that never stopped has.
        (history,) = await self._store.recent_points(
            [HistoryRequest(device.pk, rule.definition.key, *_history_span(rule, before))])
        window = self._windows[slot] = _window_of(rule, history)
        if len(self._windows) > MAX_WINDOWS:
            self._windows.popitem(last=False)
        return window

    # -- running ---------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Take this process's share of the devices, then keep it, serve the inbox and watch for silence."""
        await self._renew()
        loop = asyncio.get_running_loop()
        self._batches = asyncio.Queue(maxsize=HANDOFF_BATCHES)
        self._tasks = [loop.create_task(self._evaluate_handed_off(), name="rule-evaluation"),
                       loop.create_task(self._every(self.ownership.lease_s / 3, self._renew, "rule shard renewal"),
                                        name="rule-shards"),
                       loop.create_task(self._every(self.inbox_interval_s, self.drain_inbox, "rule inbox"),
                                        name="rule-inbox"),
                       loop.create_task(self._every(self.silence_interval_s, self.check_silence, "no-data check"),
                                        name="rule-silence")]

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Evaluate what was handed off (within ``timeout_s``), stop, and give the shards back."""
        if self._batches is not None:
            try:
                await asyncio.wait_for(self._batches.join(), timeout_s)
            except asyncio.TimeoutError:
                logger.warning("stopping with %d committed batches not evaluated by the rules", self._batches.qsize())
        self._batches = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        try:
            await self.ownership.release()  # the others take the shards now, not when the lease runs out
        except Exception:
            logger.warning("could not give back the rule shards; they pass on when the lease ends", exc_info=True)

    @staticmethod
    async def _every(interval_s: float, work, what: str) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await work()
            except Exception:  # retried at the next tick; the loop must not die with a failed pass
                logger.exception("%s failed", what)

    async def _renew(self) -> None:
        gained, lost = await self.ownership.renew()
        metrics.SHARDS_HELD.set(len(self.ownership.shards))
        if gained or lost:
            changed = gained | lost
            async with self._lock:  # windows of devices that changed hands are rebuilt by their new owner
                for slot in [s for s in self._windows if self.ownership.shard_of(s[1]) in changed]:
                    del self._windows[slot]
            logger.info("rule shards: %d held (%d gained, %d given up) of %d", len(self.ownership.shards),
                        len(gained), len(lost), self.ownership.total)

    def _evaluates_here(self, device_pk: int) -> bool:
        return not self.ownership.started or self.ownership.owns(device_pk)

    # -- evaluation -----------------------------------------------------------------------------------
    async def on_batch(self, messages: list[TelemetryMessage]) -> None:
        """Post-commit hook: hand the batch to the evaluation task and return, so that the writer commits the
        next batch while this one is evaluated. The hand-off holds a few batches; when it is full the writer
        waits: rules slow ingestion down rather than fall behind without bound."""
        if self._batches is None:  # not started: evaluate here and now
            await self.evaluate(messages)
        else:
            metrics.BACKLOG_BATCHES.inc()
            await self._batches.put(messages)

    async def _evaluate_handed_off(self) -> None:
        assert self._batches is not None
        while True:
            messages = await self._batches.get()
            try:
                await self.evaluate(messages)
            except Exception:  # one failed batch must not stop the evaluation of the next
                logger.exception("rule evaluation failed for a batch of %d messages", len(messages))
            finally:
                self._batches.task_done()
                metrics.BACKLOG_BATCHES.dec()

    async def evaluate(self, messages: list[TelemetryMessage]) -> None:
        """Evaluate the batch's numeric points of the devices this process owns; queue the others for their
        owner."""
        started = time.perf_counter()
        async with self._lock:
            await self._refresh()
            if not self._rules:
                return
            by_device = _points_by_device(messages)
            devices = await self._devices_of(list(by_device))
            mine: list[tuple[Device, list[tuple[datetime, str, float]]]] = []
            foreign: list[tuple[int, int, datetime, str, float]] = []
            for pk, points in by_device.items():
                device = devices.get(pk)
                if device is None or device.tenant_id not in self._rules:
                    continue
                if self._evaluates_here(pk):
                    mine.append((device, points))
                else:
                    shard = self.ownership.shard_of(pk)
                    foreign.extend((shard, pk, ts, key, value) for ts, key, value in points)
            await self._load_windows(mine)
            await self._apply(await self._evaluate_entries(mine))
            if foreign:
                await self._store.alerts.push_inbox(foreign)
                metrics.INBOX_POINTS.labels("queued").inc(len(foreign))
        metrics.EVALUATION_SECONDS.observe(time.perf_counter() - started)

    async def drain_inbox(self) -> int:
        """Evaluate the queued points of the devices this process owns; return how many were taken."""
        shards = sorted(self.ownership.shards)
        if not shards:
            return 0
        rows = await self._store.alerts.peek_inbox(shards, INBOX_BATCH)
        if not rows:
            return 0
        async with self._lock:
            await self._refresh()
            by_device: dict[int, list[tuple[datetime, str, float]]] = defaultdict(list)
            taken = []
            for row_id, pk, ts, key, value in rows:
                if self.ownership.owns(pk):  # a shard given up meanwhile stays queued for its new owner
                    by_device[pk].append((ts, key, value))
                    taken.append(row_id)
            devices = await self._devices_of(list(by_device))
            mine = []
            for pk, points in by_device.items():
                device = devices.get(pk)
                if device is not None and device.tenant_id in self._rules:
                    points.sort(key=lambda p: p[0])
                    mine.append((device, points))
            await self._load_windows(mine)
            await self._apply(await self._evaluate_entries(mine))
        if taken:
            await self._store.alerts.drop_inbox(taken)
            metrics.INBOX_POINTS.labels("taken").inc(len(taken))
        return len(taken)

    async def _evaluate_entries(self, entries: list[tuple[Device, list[tuple[datetime, str, float]]]]
                                ) -> list[AlertChange]:
        """Evaluate each device's points (in time order) against its tenant's rules; return the changes to
        apply, in time order per (rule, device).

        Rule by rule over the batch rather than device by device: a rule that fires on the value alone
        and has no alert open is first screened over all the batch's values of its key at once, and
        skipped whole when none fires, which is nearly always.
        """
        changes: list[AlertChange] = []
        open_rules = {rule_id for rule_id, _ in self._open}
        by_tenant: dict[int, list[tuple[Device, list[tuple[datetime, str, float]]]]] = defaultdict(list)
        for device, points in entries:
            by_tenant[device.tenant_id].append((device, points))
        for tenant_id, tenant_entries in by_tenant.items():
            rules = self._rules[tenant_id]
            if rules.silence:
                for device, points in tenant_entries:
                    self._data_ends_silence(device, points[-1][0], rules, changes)
            # key -> [(device, [(ts, value), ...] in time order)]
            series: dict[str, list[tuple[Device, list[tuple[datetime, float]]]]] = {}
            for device, points in tenant_entries:
                per_key: dict[str, list[tuple[datetime, float]]] = {}
                for ts, key, value in points:
                    if key in rules.by_key:
                        per_key.setdefault(key, []).append((ts, value))
                for key, values in per_key.items():
                    series.setdefault(key, []).append((device, values))
            for key, device_series in series.items():
                for rule, test in rules.by_key[key]:
                    if (test is not None and rule.id not in open_rules
                            and not any(test(value) for _, values in device_series for _, value in values)):
                        continue
                    windowed = test is None and needs_window(rule.definition)
                    for device, values in device_series:
                        if not rule.definition.selector.matches(device.id, device.device_type):
                            continue
                        slot = (rule.id, device.pk)
                        if test is not None and slot not in self._open and not any(test(v) for _, v in values):
                            continue  # a value rule with nothing open and no value firing: nothing to do
                        window = None
                        if windowed:
                            window = self._windows.get(slot)
                            if window is None:  # evicted since _load_windows, or a rule changed meanwhile
                                window = await self._window(rule, device, values[0][0])
                            else:
                                self._windows.move_to_end(slot)
                        changes.extend(self._evaluate_series(rule, device, values, window))
        return changes

    def _data_ends_silence(self, device: Device, at: datetime, rules: TenantRules,
                           changes: list[AlertChange]) -> None:
        for rule in rules.silence:
            slot = (rule.id, device.pk)
            if slot in self._open and rule.definition.selector.matches(device.id, device.device_type):
                changes.append(AlertChange("clear", rule, device.pk, device.id, at, None))
                self._open.discard(slot)  # data arrived: the silence is over

    def _evaluate_series(self, rule: Rule, device: Device, series: list[tuple[datetime, float]],
                         window: SeriesWindow | None) -> list[AlertChange]:
        changes: list[AlertChange] = []
        definition, slot = rule.definition, (rule.id, device.pk)
        for ts, value in series:
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
            if window is not None:
                window.push(ts, value)
        return changes

    async def on_presence(self, change: PresenceChange) -> None:
        """A device went offline or came back (announced once across processes): raise or clear its
        offline alerts."""
        device = change.device
        async with self._lock:
            await self._refresh()
            rules = self._rules.get(device.tenant_id)
            changes = []
            for rule in rules.presence if rules else ():
                slot = (rule.id, device.pk)
                if not rule.definition.selector.matches(device.id, device.device_type):
                    continue
                if not change.online and slot not in self._open:
                    changes.append(AlertChange("raise", rule, device.pk, device.id, change.at, None, 1,
                                               f"{device.id} is offline (rule '{rule.name}')"))
                    self._open.add(slot)
                elif change.online and slot in self._open:
                    changes.append(AlertChange("clear", rule, device.pk, device.id, change.at, None))
                    self._open.discard(slot)
            await self._apply(changes)

    async def check_silence(self, now: datetime | None = None) -> None:
        """Raise a no-data alert for every matching device silent for longer than its rule allows."""
        now = now or utcnow()
        async with self._lock:
            await self._refresh()
            changes = []
            for tenant_id, rules in self._rules.items():
                for rule in rules.silence:
                    condition = rule.definition.condition
                    cutoff = now - timedelta(seconds=condition.seconds)
                    for pk, device_id, device_type, since in await self._store.alerts.silent_devices(tenant_id, cutoff):
                        if ((rule.id, pk) in self._open or not self._evaluates_here(pk)
                                or not rule.definition.selector.matches(device_id, device_type)):
                            continue
                        silent_s = int((now - since).total_seconds())
                        changes.append(AlertChange("raise", rule, pk, device_id, now, None, 1,
                                                   f"{device_id} has sent no data for {silent_s} s "
                                                   f"(rule '{rule.name}': {condition.seconds:g} s)"))
                        self._open.add((rule.id, pk))
            await self._apply(changes)

    async def _apply(self, changes: list[AlertChange]) -> None:
        if not changes:
            return
        notified = await self._store.alerts.apply_changes(changes, utcnow(), notification_payload)
        for alert in notified:
            metrics.ALERTS.labels(alert.severity, "raised" if alert.status != "cleared" else "cleared").inc()
            logger.info("alert %s %s: rule=%s device=%s", alert.id, alert.status, alert.rule_name, alert.device_id)
        # Another process may have raised or cleared meanwhile: reread the open set soon.
        self._open_loaded = min(self._open_loaded, time.monotonic() - OPEN_ALERTS_TTL_S + 1.0)


class TenantRules:
    """A tenant's enabled rules, as evaluation looks them up: point rules by key, and the no-data rules."""

    __slots__ = ("by_key", "windowed", "silence", "presence")

    def __init__(self) -> None:
        # key -> (rule, its fast value test when it fires on the value alone)
        self.by_key: dict[str, list[tuple[Rule, Callable[[float], bool] | None]]] = {}
        # key -> the rules of it that need a window of earlier points (z-score, rate)
        self.windowed: dict[str, list[Rule]] = {}
        self.silence: list[Rule] = []
        self.presence: list[Rule] = []

    def add(self, rule: Rule) -> None:
        if rule.definition.on_silence:
            self.silence.append(rule)
        elif rule.definition.on_presence:
            self.presence.append(rule)
        else:
            self.by_key.setdefault(rule.definition.key, []).append((rule, value_test(rule.definition)))
            if needs_window(rule.definition):
                self.windowed.setdefault(rule.definition.key, []).append(rule)


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
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            window.push(ts, float(value))
    return window


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
