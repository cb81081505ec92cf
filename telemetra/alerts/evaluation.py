"""Decide a batch's grouped points against their tenants' rules: the alert changes (raise, bump, clear)."""

from __future__ import annotations

import asyncio
from itertools import chain
from operator import itemgetter
from typing import Callable

from telemetra.alerts.grouping import GroupedPoints, Series
from telemetra.alerts.rule_index import TenantRules
from telemetra.alerts.silence import data_ends_silence
from telemetra.alerts.windows import SeriesWindows
from telemetra.domain.alerts import AlertChange, Rule
from telemetra.domain.models import Device
from telemetra.domain.rules import SeriesWindow, Threshold, clears, fires

__all__ = ["alert_changes"]

_value_of = itemgetter(1)  # of a (ts, value) point

# ``open_pairs`` below is the (rule id, device pk) pairs with an alert open; a decision adds or removes the
# pair its change opens or closes, so that the batch's later points see it.


async def alert_changes(
    grouped: GroupedPoints,
    rules: dict[int, TenantRules],
    open_pairs: set[tuple[int, int]],
    open_rules: set[int],
    windows: SeriesWindows,
) -> list[AlertChange]:
    """Evaluate the grouped points against their tenants' ``rules``; return the changes to apply, in time
    order per (rule, device). ``open_rules`` are the ids of the rules with an alert open when the points
    were grouped: ``group_points`` must have been given the same, or a key it left ungrouped would miss a
    rule that has one.

    Rule by rule over the batch rather than device by device. A rule that fires on the value alone and
    has no alert open is first screened over all the batch's values of its key at once, and skipped
    whole when none fires, which is nearly always. Z-scores and rates that look at the same window (a
    WindowGroup) share it: when none has an alert open, the points that leave them all quiet are pushed
    in one tight loop, and the others are decided for each rule, then pushed once. The loop is given
    back to the other tasks after each rule or group, so that requests and commits go on while a large
    batch is evaluated.
    """
    changes: list[AlertChange] = []
    devices = grouped.devices
    for tenant_id, series in grouped.by_tenant.items():
        tenant_rules = rules[tenant_id]
        for pk, at in grouped.last_ts.items():
            if devices[pk].tenant_id == tenant_id:
                data_ends_silence(devices[pk], at, tenant_rules, open_pairs, changes)
        for key, (lowest, highest) in grouped.extremes[tenant_id].items():
            letting_through = [
                (rule, test)
                for rule, test, screen in tenant_rules.by_key[key]
                # screen is not None: these keys are TenantRules.screened_keys
                if lowest <= highest and screen is not None and screen(lowest, highest)
            ]
            if letting_through:
                per_device = grouped.series_of(tenant_id, key)
                for rule, test in letting_through:
                    _evaluate_value_rule(rule, test, per_device, devices, open_pairs, changes)
                    await asyncio.sleep(0)
        for key, per_device in series.items():
            value_rules = tenant_rules.by_key.get(key, ())
            if value_rules:
                key_values = list(map(_value_of, chain.from_iterable(per_device.values())))
                lowest, highest = min(key_values), max(key_values)
            for rule, test, screen in value_rules:
                if rule.id not in open_rules and (
                    not screen(lowest, highest) if screen is not None else not any(map(test, key_values))
                ):
                    continue
                _evaluate_value_rule(rule, test, per_device, devices, open_pairs, changes)
                await asyncio.sleep(0)
            for group in tenant_rules.windowed.get(key, ()):
                todo = per_device
                if group.selects_all and not any(rule.id in open_rules for rule in group.rules):
                    todo = await windows.push_quiet(group, per_device)
                for pk, values in todo.items():
                    device = devices[pk]
                    matching = group.matching(device)
                    if not matching:
                        continue
                    window = await windows.get(group, device, values[0][0])
                    if not any((rule.id, pk) in open_pairs for rule in matching):
                        quiet = group.quiet(window, values)
                        if quiet == len(values):
                            continue
                        values = values[quiet:]
                    changes.extend(_evaluate_series(matching, device, values, window, open_pairs))
                await asyncio.sleep(0)
    return changes


def _evaluate_value_rule(
    rule: Rule,
    test: Callable[[float], bool],
    per_device: dict[int, Series],
    devices: dict[int, Device],
    open_pairs: set[tuple[int, int]],
    changes: list[AlertChange],
) -> None:
    """A threshold or range over the devices it selects that have a value it fires on, or its alert open."""
    selector = rule.definition.selector
    for pk, values in per_device.items():
        device = devices[pk]
        if ((rule.id, pk) in open_pairs or any(test(value) for _, value in values)) and selector.matches(
            device.id, device.device_type
        ):
            changes.extend(_evaluate_series([rule], device, values, None, open_pairs))


def _evaluate_series(
    rules: list[Rule], device: Device, series: Series, window: SeriesWindow | None, open_pairs: set[tuple[int, int]]
) -> list[AlertChange]:
    """Decide each point for each of ``rules`` (which share ``window``, or need none), then push it onto
    the window once. The changes come out in time order per rule."""
    per_rule: list[list[AlertChange]] = [[] for _ in rules]
    for ts, value in series:
        for rule, changes in zip(rules, per_rule, strict=True):
            definition, slot = rule.definition, (rule.id, device.pk)
            if fires(definition, ts, value, window):
                if slot in open_pairs:
                    _append_bump(changes, AlertChange("bump", rule, device.pk, device.id, ts, value))
                else:
                    changes.append(
                        AlertChange("raise", rule, device.pk, device.id, ts, value, 1, _message(rule, device, value))
                    )
                    open_pairs.add(slot)
            elif slot in open_pairs and clears(definition, ts, value, window):
                changes.append(AlertChange("clear", rule, device.pk, device.id, ts, value))
                open_pairs.discard(slot)
        if window is not None:
            window.push(ts, value)
    return [change for changes in per_rule for change in changes]


def _append_bump(changes: list[AlertChange], bump: AlertChange) -> None:
    """Fold a bump into the previous one of the same (rule, device): one UPDATE per batch, not per point."""
    last = changes[-1] if changes else None
    if last is not None and last.kind == "bump" and (last.rule.id, last.device_pk) == (bump.rule.id, bump.device_pk):
        changes[-1] = AlertChange(
            "bump", bump.rule, bump.device_pk, bump.device_id, bump.ts, bump.value, last.count + 1
        )
    else:
        changes.append(bump)


def _message(rule: Rule, device: Device, value: float) -> str:
    condition = rule.definition.condition
    if isinstance(condition, Threshold):
        what = f"{condition.op} {condition.value:g}"
    else:
        what = condition.type
    return f"{device.id}: {rule.definition.key} = {value:g} ({what}, rule '{rule.name}')"
