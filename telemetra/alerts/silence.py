"""Decide the alerts of devices that fall quiet: no data for too long (the no-data timer), offline, and back."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable

from telemetra.alerts.rule_index import TenantRules
from telemetra.domain.alerts import AlertChange
from telemetra.domain.models import Device
from telemetra.domain.rules import NoData
from telemetra.registry.presence import PresenceChange
from telemetra.store import Store

__all__ = ["silence_changes", "presence_changes", "data_ends_silence"]

# ``open_pairs`` below is the (rule id, device pk) pairs with an alert open; each function adds or removes the
# pairs its changes open or close, so that the next decision (in this batch or pass) sees them.


async def silence_changes(
    store: Store,
    rules: dict[int, TenantRules],
    open_pairs: set[tuple[int, int]],
    evaluates_here: Callable[[int], bool],
    now: datetime,
) -> list[AlertChange]:
    """Raise a no-data alert for every matching device this process evaluates (``evaluates_here``, by pk)
    that has been silent for longer than its rule allows."""
    changes = []
    for tenant_id, tenant_rules in rules.items():
        for rule in tenant_rules.silence:
            condition = rule.definition.condition
            assert isinstance(condition, NoData)  # TenantRules.silence holds the no-data rules only
            cutoff = now - timedelta(seconds=condition.seconds)
            for pk, device_id, device_type, since in await store.alerts.silent_devices(tenant_id, cutoff):
                if (
                    (rule.id, pk) in open_pairs
                    or not evaluates_here(pk)
                    or not rule.definition.selector.matches(device_id, device_type)
                ):
                    continue
                silent_s = int((now - since).total_seconds())
                changes.append(
                    AlertChange(
                        "raise",
                        rule,
                        pk,
                        device_id,
                        now,
                        None,
                        1,
                        f"{device_id} has sent no data for {silent_s} s (rule '{rule.name}': {condition.seconds:g} s)",
                    )
                )
                open_pairs.add((rule.id, pk))
    return changes


def presence_changes(
    change: PresenceChange, rules: TenantRules | None, open_pairs: set[tuple[int, int]]
) -> list[AlertChange]:
    """Raise the offline alerts of a device that went offline, or clear them when it is back (``rules``:
    its tenant's, if it has any)."""
    device = change.device
    changes = []
    for rule in rules.presence if rules else ():
        slot = (rule.id, device.pk)
        if not rule.definition.selector.matches(device.id, device.device_type):
            continue
        if not change.online and slot not in open_pairs:
            changes.append(
                AlertChange(
                    "raise",
                    rule,
                    device.pk,
                    device.id,
                    change.at,
                    None,
                    1,
                    f"{device.id} is offline (rule '{rule.name}')",
                )
            )
            open_pairs.add(slot)
        elif change.online and slot in open_pairs:
            changes.append(AlertChange("clear", rule, device.pk, device.id, change.at, None))
            open_pairs.discard(slot)
    return changes


def data_ends_silence(
    device: Device, at: datetime, rules: TenantRules, open_pairs: set[tuple[int, int]], changes: list[AlertChange]
) -> None:
    """Clear the device's open no-data alerts: a point arrived at ``at``."""
    for rule in rules.silence:
        slot = (rule.id, device.pk)
        if slot in open_pairs and rule.definition.selector.matches(device.id, device.device_type):
            changes.append(AlertChange("clear", rule, device.pk, device.id, at, None))
            open_pairs.discard(slot)
