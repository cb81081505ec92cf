"""Run rule evaluation: the pipeline's post-commit consumer, the shard lease, the inbox and the no-data timer.

Each (rule, device) is evaluated by one process: the owner of the device's shard (``alerts.ownership``).
After a commit, the points of devices this process owns are evaluated at once, in time order per device;
the others are queued in the database for their owner (``alerts.inbox``), which takes them within
``inbox_interval_s``. The engine ties the parts together under one lock: what it reads from the database
(``alerts.rule_cache``), the points of a batch grouped (``alerts.grouping``), the windows its z-scores and
rates need (``alerts.windows``), the decisions (``alerts.evaluation``, ``alerts.silence``). Whether an alert
is open is kept in the database; one open alert per (rule, device) is guaranteed there. A batch's alert
changes and their notifications are written in one transaction.

An engine that was never started (a tool or a test driving ``on_batch`` by hand) evaluates everything it
is given itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Awaitable, Callable, Iterable

from telemetra.alerts import metrics
from telemetra.alerts.evaluation import alert_changes
from telemetra.alerts.grouping import group_points
from telemetra.alerts.inbox import RuleInbox, inbox_points
from telemetra.alerts.ownership import ShardOwnership
from telemetra.alerts.rule_cache import RuleCache
from telemetra.alerts.silence import presence_changes, silence_changes
from telemetra.alerts.windows import SeriesWindows
from telemetra.domain.alerts import Alert, AlertChange, notification_payload
from telemetra.domain.models import Device, Point, TelemetryMessage
from telemetra.domain.timeparse import utcnow
from telemetra.registry.presence import PresenceChange
from telemetra.store import Store

logger = logging.getLogger(__name__)
__all__ = ["RuleEngine"]

HANDOFF_BATCHES = 8  # committed batches waiting for evaluation, at most


class RuleEngine:
    """Evaluate rules on the committed points of the devices this process owns, and on their silence."""

    def __init__(
        self,
        store: Store,
        *,
        silence_interval_s: float = 10.0,
        inbox_interval_s: float = 0.1,
        ownership: ShardOwnership | None = None,
    ) -> None:
        self._store = store
        self.silence_interval_s = silence_interval_s
        self.inbox_interval_s = inbox_interval_s
        self.ownership = ownership or ShardOwnership(store)
        self._tasks: list[asyncio.Task] = []
        self._batches: asyncio.Queue[list[TelemetryMessage]] | None = None
        self._cache = RuleCache(store)
        self._windows = SeriesWindows(store)
        self._inbox = RuleInbox(store, self.ownership)
        # One evaluation at a time: it decides on the open pairs and pushes onto the windows it shares.
        self._lock = asyncio.Lock()
        self._alert_listeners: list[Callable[[Alert], None]] = []

    def on_alert(self, listener: Callable[[Alert], None]) -> None:
        """Call ``listener`` (it must not wait) with each alert raised, cleared or acknowledged, once committed."""
        self._alert_listeners.append(listener)

    def announce(self, alerts: Iterable[Alert]) -> None:
        for alert in alerts:
            for listener in self._alert_listeners:
                try:
                    listener(alert)
                except Exception:  # a listener's fault must not undo an evaluation already committed
                    logger.exception("alert listener failed for alert %s", alert.id)

    # -- rules changed ---------------------------------------------------------------------------------
    def rules_changed(self) -> None:
        """Reload rules (and drop their windows) before the next evaluation. The windows are dropped there,
        under the lock: an evaluation may be half-way through a batch right now."""
        self._cache.reload_rules()
        self._windows.drop_all_later()

    async def _refresh(self) -> None:
        self._windows.drop_if_stale()  # under the lock: no evaluation is using them
        await self._cache.refresh()

    # -- running ---------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Take this process's share of the devices, then keep it, serve the inbox and watch for silence."""
        await self._renew()
        loop = asyncio.get_running_loop()
        self._batches = asyncio.Queue(maxsize=HANDOFF_BATCHES)
        self._tasks = [
            loop.create_task(self._evaluate_handed_off(), name="rule-evaluation"),
            loop.create_task(
                self._every(self.ownership.lease_s / 3, self._renew, "rule shard renewal"), name="rule-shards"
            ),
            loop.create_task(self._every(self.inbox_interval_s, self.drain_inbox, "rule inbox"), name="rule-inbox"),
            loop.create_task(
                self._every(self.silence_interval_s, self.check_silence, "no-data check"), name="rule-silence"
            ),
        ]

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
    async def _every(interval_s: float, work: Callable[[], Awaitable[object]], what: str) -> None:
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
                self._windows.drop_devices(lambda pk: self.ownership.shard_of(pk) in changed)
            logger.info(
                "rule shards: %d held (%d gained, %d given up) of %d",
                len(self.ownership.shards),
                len(gained),
                len(lost),
                self.ownership.total,
            )

    def _evaluates_here(self, device_pk: int) -> bool:
        return not self.ownership.started or self.ownership.owns(device_pk)

    # -- evaluation ------------------------------------------------------------------------------------
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
            if not self._cache.rules:
                return
            devices = await self._cache.devices_of(list({message.device_pk for message in messages}))
            watched = {pk: device for pk, device in devices.items() if device.tenant_id in self._cache.rules}
            here = self.ownership.owned(watched) if self.ownership.started else watched
            mine = {pk: device for pk, device in watched.items() if pk in here}
            foreign = watched.keys() - here
            await self._evaluate_points(((message.device_pk, message.points) for message in messages), mine)
            if foreign:
                await self._inbox.queue(messages, foreign)
        metrics.EVALUATION_SECONDS.observe(time.perf_counter() - started)

    async def drain_inbox(self) -> int:
        """Evaluate the queued points of the devices this process owns; return how many were taken."""
        rows = await self._inbox.peek()
        if not rows:
            return 0
        async with self._lock:
            await self._refresh()
            taken = self._inbox.still_owned(rows)
            devices = await self._cache.devices_of(list({row[1] for row in taken}))
            mine = {pk: device for pk, device in devices.items() if device.tenant_id in self._cache.rules}
            await self._evaluate_points(inbox_points(taken), mine)
        await self._inbox.drop(taken)
        return len(taken)

    async def _evaluate_points(self, messages: Iterable[tuple[int, list[Point]]], devices: dict[int, Device]) -> None:
        """Evaluate the points of ``messages`` ((device pk, points) pairs) of ``devices`` and apply the changes."""
        # One snapshot for both: the keys grouping leaves ungrouped are exactly those evaluation screens.
        rules, open_pairs = self._cache.rules, self._cache.open_pairs
        open_rules = {rule_id for rule_id, _ in open_pairs}
        grouped = group_points(messages, devices, rules, open_rules)
        await asyncio.sleep(0)  # grouping took a while: let the writer and the requests move first
        await self._windows.load_missing(grouped, rules)
        changes = await alert_changes(grouped, rules, open_pairs, open_rules, self._windows)
        self._windows.forget_old()
        await self._apply(changes)

    async def on_presence(self, change: PresenceChange) -> None:
        """A device went offline or came back (announced once across processes): raise or clear its
        offline alerts."""
        async with self._lock:
            await self._refresh()
            tenant_rules = self._cache.rules.get(change.device.tenant_id)
            await self._apply(presence_changes(change, tenant_rules, self._cache.open_pairs))

    async def check_silence(self, now: datetime | None = None) -> None:
        """Raise a no-data alert for every matching device silent for longer than its rule allows."""
        now = now or utcnow()
        async with self._lock:
            await self._refresh()
            changes = await silence_changes(
                self._store, self._cache.rules, self._cache.open_pairs, self._evaluates_here, now
            )
            await self._apply(changes)

    async def _apply(self, changes: list[AlertChange]) -> None:
        if not changes:
            return
        notified = await self._store.alerts.apply_changes(changes, utcnow(), notification_payload)
        for alert in notified:
            metrics.ALERTS.labels(alert.severity, "raised" if alert.status != "cleared" else "cleared").inc()
            logger.info("alert %s %s: rule=%s device=%s", alert.id, alert.status, alert.rule_name, alert.device_id)
        self.announce(notified)
        self._cache.reread_open_soon()
