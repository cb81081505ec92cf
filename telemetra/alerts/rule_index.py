"""Index a tenant's enabled rules the way evaluation looks them up: by key, by shared window, by kind."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Callable, Iterable

from telemetra.domain.alerts import Rule
from telemetra.domain.models import Device
from telemetra.domain.rules import (
    SeriesWindow,
    most_sensitive,
    needs_window,
    quiet_prefix,
    span_test,
    value_test,
    window_spec,
)

__all__ = ["TenantRules", "WindowGroup", "index_rules"]


def index_rules(rules: Iterable[Rule]) -> dict[int, TenantRules]:
    """Group enabled rules by tenant, each tenant's indexed as a ``TenantRules``."""
    by_tenant: dict[int, TenantRules] = defaultdict(TenantRules)
    for rule in rules:
        by_tenant[rule.tenant_id].add(rule)
    return dict(by_tenant)


class TenantRules:
    """A tenant's enabled rules, as evaluation looks them up: value rules and windowed rules by key, and the
    no-data and offline rules."""

    __slots__ = ("keys", "by_key", "windowed", "silence", "presence")

    def __init__(self) -> None:
        self.keys: set[str] = set()  # the keys some point rule watches
        # key -> (rule, its value test, and its test of the lowest and highest of many values when it has
        # one), for the rules that fire on the value alone (threshold, range)
        self.by_key: dict[str, list[tuple[Rule, Callable[[float], bool], Callable[[float, float], bool] | None]]] = {}
        # key -> the z-scores and rates on it, grouped by the window they look at
        self.windowed: dict[str, list[WindowGroup]] = {}
        self.silence: list[Rule] = []
        self.presence: list[Rule] = []

    def screened_keys(self, open_rules: set[int]) -> list[str]:
        """The keys watched only by thresholds and ranges that can be screened by a batch's lowest and highest
        value, none with an alert open (``open_rules``): what evaluation needs of them is those two values."""
        return [
            key
            for key, entries in self.by_key.items()
            if key not in self.windowed
            and all(screen is not None and rule.id not in open_rules for rule, _, screen in entries)
        ]

    def add(self, rule: Rule) -> None:
        definition = rule.definition
        if definition.on_silence:
            self.silence.append(rule)
        elif definition.on_presence:
            self.presence.append(rule)
        elif needs_window(definition):
            key = definition.key
            assert key is not None  # a rule on values always names its key (domain.rules.parse_definition)
            groups = self.windowed.setdefault(key, [])
            spec = window_spec(definition)
            group = next((g for g in groups if g.spec == spec), None)
            if group is None:
                groups.append(WindowGroup(spec, key, rule))
            else:
                group.add(rule)
        else:
            key, test = definition.key, value_test(definition)
            assert key is not None  # as above
            assert test is not None  # a rule on values that needs no window is a threshold or a range
            self.by_key.setdefault(key, []).append((rule, test, span_test(definition)))
        if definition.key is not None and not definition.on_silence and not definition.on_presence:
            self.keys.add(definition.key)


class WindowGroup:
    """The z-scores (or rates) of a tenant on one key that look at the same window of earlier points: a
    device has one window for all of them, pushed once per point."""

    __slots__ = ("spec", "key", "rules", "rule", "quiet", "selects_all")

    quiet: Callable[[SeriesWindow, list[tuple[datetime, float]]], int]

    def __init__(self, spec: str, key: str, rule: Rule) -> None:
        self.spec = spec  # domain.rules.window_spec: the windows' name, stable across rule reloads
        self.key = key  # the key the rules watch
        self.rules: list[Rule] = []
        self.add(rule)

    def add(self, rule: Rule) -> None:
        self.rules.append(rule)
        self.rule = self.rules[0]  # any of them describes the window (and how to rebuild it)
        quiet = quiet_prefix(most_sensitive([r.definition for r in self.rules]))
        assert quiet is not None  # the group's rules are z-scores or rates, which have one
        self.quiet = quiet
        self.selects_all = all(r.definition.selector.selects_all for r in self.rules)

    def matching(self, device: Device) -> list[Rule]:
        """The rules of the group that watch ``device``."""
        if self.selects_all:
            return self.rules
        return [rule for rule in self.rules if rule.definition.selector.matches(device.id, device.device_type)]
