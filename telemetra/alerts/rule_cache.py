"""Keep what evaluation reads from the database: the enabled rules, the open alerts, and the devices."""

from __future__ import annotations

import time
from collections import OrderedDict

from telemetra.alerts.rule_index import TenantRules, index_rules
from telemetra.domain.models import Device
from telemetra.store import Store

__all__ = ["RuleCache", "RULES_TTL_S", "OPEN_ALERTS_TTL_S", "MAX_DEVICES_CACHED"]

RULES_TTL_S = 5.0  # rules changed by another process are seen within this
OPEN_ALERTS_TTL_S = 5.0
MAX_DEVICES_CACHED = 100_000


class RuleCache:
    """The enabled rules by tenant and the open (rule id, device pk) pairs, reread every few seconds (other
    processes change both), and the devices by pk, the least recently read dropped first. The database
    keeps the truth: one open alert per (rule, device) is guaranteed there, not here."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.rules: dict[int, TenantRules] = {}
        self._rules_loaded = 0.0
        # Evaluation adds and removes pairs as it decides, so that the rest of a batch sees them.
        self.open_pairs: set[tuple[int, int]] = set()
        self._open_loaded = 0.0
        self._devices: OrderedDict[int, Device] = OrderedDict()

    def reload_rules(self) -> None:
        """Reread the rules at the next ``refresh``."""
        self._rules_loaded = 0.0

    def reread_open_soon(self) -> None:
        """Reread the open pairs within a second: another process may have raised or cleared meanwhile."""
        self._open_loaded = min(self._open_loaded, time.monotonic() - OPEN_ALERTS_TTL_S + 1.0)

    async def refresh(self) -> None:
        """Reread what is older than its time to live."""
        now = time.monotonic()
        if now - self._rules_loaded > RULES_TTL_S:
            self.rules = index_rules(await self._store.alerts.list_rules(None, enabled_only=True))
            self._rules_loaded = now
        if now - self._open_loaded > OPEN_ALERTS_TTL_S:
            self.open_pairs, self._open_loaded = await self._store.alerts.open_alert_pairs(), now

    async def devices_of(self, pks: list[int]) -> dict[int, Device]:
        """The devices of ``pks`` that exist; those not cached yet are read in one query."""
        missing = [pk for pk in pks if pk not in self._devices]
        if missing:
            self._devices.update(await self._store.get_devices_by_pk(missing))
            while len(self._devices) > MAX_DEVICES_CACHED:
                self._devices.popitem(last=False)
        return {pk: self._devices[pk] for pk in pks if pk in self._devices}
