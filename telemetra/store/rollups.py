"""What a batch of points changes in the rollups, computed in Python and written by each backend.

Two kinds of rollup, both per device, key and UTC hour:

- statistics of numeric points (count, sum, sum of squares, min, max, first, last). The points before the
  seal mark (``rollup_seal.sealed_until``) are in the rollups; the points from it on are not yet, and the
  sealer (``Store.seal_rollups``, run every few seconds by ``ingest.sealer``) adds them a time slice at a
  time in one set-based statement, then moves the mark: a batch does not rewrite one statistics row per
  point it writes. A late point (before the mark) is merged by its own batch, in its transaction; an hour
  where such a point replaced a stored one (same device, key and time: the later write wins) is
  recomputed from the raw points before the mark. Readers take the rollups before the mark and aggregate
  the raw points after it, in one statement, so that every answer is exact;
- energy of power keys (``RollupConfig.energy_keys``), written in the batch's transaction: the integral
  of the power step function. A value holds until the next one, at most ``max_hold``. Only closed steps
  are stored: a sample's step is added when the next sample arrives; the newest sample's open step is
  added at query time. When every new sample of a series comes after the stored newest one (the usual
  stream), the batch adds the steps it closes; otherwise (a late or replacing sample) the hours it can
  touch are recomputed from raw points.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable, TypeGuard

from telemetra.domain.energy import integrate_hours
from telemetra.domain.models import Point
from telemetra.domain.rollup import Aggregate

__all__ = [
    "RollupConfig",
    "plan_stats",
    "plan_energy",
    "energy_recompute_window",
    "closed_steps_energy",
    "energy_change",
    "recompute_energy",
    "energy_updates",
    "hour_floor",
]

HOUR = timedelta(hours=1)
PointKey = tuple[int, str, datetime]


@dataclass(frozen=True, slots=True)
class RollupConfig:
    energy_keys: frozenset[str] = frozenset({"instant_power"})
    max_hold: timedelta = HOUR


def hour_floor(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


def _numeric(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def plan_stats(points: dict[PointKey, Point]) -> dict[tuple[int, str, datetime], Aggregate]:
    """The statistics of the numeric points per (device, key, hour): what a batch merges of its late points."""
    groups: dict[tuple[int, str, datetime], list[tuple[datetime, float]]] = defaultdict(list)
    for (device_pk, key, ts), point in points.items():
        if _numeric(point.value):
            groups[(device_pk, key, hour_floor(ts))].append((ts, float(point.value)))
    return {group: Aggregate.from_values(samples) for group, samples in groups.items()}


def plan_energy(
    points: dict[PointKey, Point], config: RollupConfig
) -> dict[tuple[int, str], list[tuple[datetime, float]]]:
    """The batch's numeric samples of power keys per (device, key), sorted by time."""
    series: dict[tuple[int, str], list[tuple[datetime, float]]] = defaultdict(list)
    for (device_pk, key, ts), point in points.items():
        if key in config.energy_keys and _numeric(point.value):
            series[(device_pk, key)].append((ts, float(point.value)))
    return {k: sorted(v) for k, v in series.items()}


def _known(hours: dict) -> dict[datetime, tuple[float, float]]:
    # Hours with no known power are not stored: a missing row means nothing known.
    return {hour: (e.wh, e.covered_s) for hour, e in hours.items() if e.covered_s > 0}


def closed_steps_energy(
    previous: tuple[datetime, float] | None, samples: list[tuple[datetime, float]], max_hold: timedelta
) -> dict[datetime, tuple[float, float]]:
    """Energy per UTC hour of the steps that ``samples`` close: from ``previous`` (the stored newest sample,
    older than all of them) through each sample but the last, whose step stays open."""
    chain = ([previous] if previous is not None else []) + samples
    if len(chain) < 2:
        return {}
    return _known(integrate_hours(chain, chain[0][0], chain[-1][0], max_hold=max_hold))


def energy_recompute_window(samples: list[tuple[datetime, float]], max_hold: timedelta) -> tuple[datetime, datetime]:
    """The UTC hours [lo, hi) whose energy late or replacing ``samples`` can change.

    A new sample at t cuts the step of the sample before it, which lies within [t - max_hold, t), and its
    own step lies within [t, t + max_hold): so [first - max_hold, last + max_hold), widened to whole hours.
    """
    lo = hour_floor(samples[0][0] - max_hold)
    hi = hour_floor(samples[-1][0] + max_hold) + HOUR
    return lo, hi


def recompute_energy(
    carried: tuple[datetime, float] | None,
    window_samples: list[tuple[datetime, float]],
    successor_exists: bool,
    lo: datetime,
    hi: datetime,
    max_hold: timedelta,
) -> dict[datetime, tuple[float, float]]:
    """Energy per UTC hour in [lo, hi) from raw samples: ``carried`` is the last sample before ``lo``,
    ``window_samples`` those in [lo, hi); without a later sample the newest step is open and left out."""
    chain = ([carried] if carried is not None else []) + window_samples
    if not chain:
        return {}
    end = hi if successor_exists else min(hi, chain[-1][0])
    if end <= lo:
        return {}
    return _known(integrate_hours(chain, lo, end, max_hold=max_hold))


def energy_change(
    new: dict[datetime, tuple[float, float]], old: dict[datetime, tuple[float, float]]
) -> dict[datetime, tuple[float, float]]:
    """Per hour, (Wh, covered seconds) of ``new`` minus ``old``: what a tenant's sums must move by."""
    change = {}
    for hour in set(new) | set(old):
        new_wh, new_cov = new.get(hour, (0.0, 0.0))
        old_wh, old_cov = old.get(hour, (0.0, 0.0))
        change[hour] = (new_wh - old_wh, new_cov - old_cov)
    return change


EnergyRows = dict[tuple[int, int, datetime], tuple[float, float]]


async def energy_updates(
    energy: dict[tuple[int, int], list[tuple[datetime, float]]],
    prior: dict[tuple[int, int], tuple[datetime, float | None]],
    replaced: set,
    max_hold: timedelta,
    tenants: dict[int, int],
    recompute: Callable[[int, int, list], Awaitable[dict[datetime, tuple[float, float]]]],
) -> tuple[EnergyRows, EnergyRows]:
    """Energy to add per (device, key id, hour) and per (tenant, key id, hour) for a batch's power samples.

    ``prior``: each series' stored newest sample; ``recompute(device, key id, samples)`` rewrites the hours a
    late sample touches and returns their change, which the device rows already hold but tenants need.
    """
    added: EnergyRows = {}
    tenant_sums: dict[tuple[int, int, datetime], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for (pk, kid), samples in sorted(energy.items()):
        stored = prior.get((pk, kid))
        previous = (stored[0], stored[1]) if stored is not None and stored[1] is not None else None
        in_order = stored is None or samples[0][0] > stored[0]
        if in_order and not any((pk, kid, ts) in replaced for ts, _ in samples):
            hours = closed_steps_energy(previous, samples, max_hold)
            added.update({(pk, kid, hour): value for hour, value in hours.items()})
        else:
            hours = await recompute(pk, kid, samples)
        for hour, (wh, covered) in hours.items():
            sums = tenant_sums[(tenants[pk], kid, hour)]
            sums[0] += wh
            sums[1] += covered
    return added, {k: (v[0], v[1]) for k, v in tenant_sums.items()}
