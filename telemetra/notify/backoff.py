"""When to try a failed delivery again: exponential back-off with jitter, and when to give up."""

from __future__ import annotations

import random

__all__ = ["MAX_ATTEMPTS", "next_delay"]

# With the defaults the tenth and last attempt comes some 43 minutes after the first (21 after the ninth):
# long enough to outlast a receiver's restart or a deploy, short enough that an alert is not delivered
# when it no longer matters.
MAX_ATTEMPTS = 10
# 2**60 times any sane base is far past every cap; bounding the exponent keeps huge attempts finite.
_MAX_EXPONENT = 60
_rng = random.Random()


def next_delay(
    attempt: int, *, base_s: float = 5.0, max_s: float = 3600.0, jitter: float = 0.1, rng: random.Random | None = None
) -> float:
    """Return the seconds to wait after failed attempt number ``attempt`` (1 for the first).

    The delay is ``base_s * 2**(attempt - 1)`` capped at ``max_s``, then moved by a random fraction of
    up to ``jitter`` either way, so a result lies within ``max_s * (1 ± jitter)``. The jitter comes after
    the cap on purpose: receivers that failed together still come back spread out once they all wait
    the maximum.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    if base_s <= 0 or max_s <= 0:
        raise ValueError("base_s and max_s must be positive")
    if not 0 <= jitter < 1:
        raise ValueError(f"jitter is a fraction in [0, 1), got {jitter}")
    delay = min(max_s, base_s * 2.0 ** min(attempt - 1, _MAX_EXPONENT))
    return delay * (1 + (rng or _rng).uniform(-jitter, jitter))
