"""Retry delays: exponential from base_s, capped at max_s, spread by jitter, reproducible with a seeded rng."""

from __future__ import annotations

import random

import pytest

from telemetra.notify.backoff import MAX_ATTEMPTS, next_delay


def test_max_attempts_default() -> None:
    assert MAX_ATTEMPTS == 10


def test_without_jitter_the_delay_doubles_up_to_the_cap() -> None:
    delays = [next_delay(attempt, jitter=0.0) for attempt in range(1, 13)]
    assert delays == [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]


def test_base_and_cap_are_honoured() -> None:
    assert [next_delay(a, base_s=0.5, max_s=3, jitter=0.0) for a in range(1, 6)] == [0.5, 1, 2, 3, 3]


def test_a_seeded_rng_gives_the_same_delays() -> None:
    first = [next_delay(a, rng=random.Random(7)) for a in range(1, 11)]
    second = [next_delay(a, rng=random.Random(7)) for a in range(1, 11)]
    assert first == second


def test_jitter_stays_within_its_fraction_and_spreads() -> None:
    rng = random.Random(42)
    for attempt, nominal in [(1, 5.0), (4, 40.0), (30, 3600.0)]:
        delays = [next_delay(attempt, jitter=0.1, rng=rng) for _ in range(500)]
        assert all(nominal * 0.9 <= d <= nominal * 1.1 for d in delays)
        # Spread both ways, also at the cap: clients that failed together do not come back together.
        assert min(delays) < nominal * 0.95 and max(delays) > nominal * 1.05
        assert len(set(delays)) == len(delays)


def test_a_huge_attempt_number_stays_at_the_cap() -> None:
    assert next_delay(100_000, jitter=0.0) == 3600.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"attempt": 0},
        {"attempt": -1},
        {"attempt": 1, "base_s": 0},
        {"attempt": 1, "max_s": -1},
        {"attempt": 1, "jitter": 1.0},
        {"attempt": 1, "jitter": -0.1},
    ],
)
def test_nonsense_arguments_are_refused(kwargs) -> None:
    attempt = kwargs.pop("attempt")
    with pytest.raises(ValueError):
        next_delay(attempt, **kwargs)
