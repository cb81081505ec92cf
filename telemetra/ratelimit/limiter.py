"""Counting hits against `limits` rates, in this process's memory or in Redis."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.storage import storage_from_string
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from telemetra.errors import TooManyRequests

logger = logging.getLogger(__name__)
__all__ = ["RateLimiter", "Verdict", "parse_rate"]



def parse_rate(text: str) -> RateLimitItem:
    """Return the `limits` item of a rate such as ``60/minute``."""
    return parse(text)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one hit: allowed or not, and what the RateLimit-* headers say."""

    allowed: bool
    limit: int
    remaining: int
    reset_after_s: int
    name: str

    def headers(self) -> dict[str, str]:
        headers = {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining),
                   "RateLimit-Reset": str(self.reset_after_s)}
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.reset_after_s))
        return headers

    def refuse(self, message: str | None = None) -> TooManyRequests:
        return TooManyRequests(message or f"Rate limit '{self.name}' exceeded; retry after "
                               f"{max(1, self.reset_after_s)} s.", headers=self.headers())


class RateLimiter:
    """Sliding-window counters (two counters per key, so 6,000/min costs no more than 60/min).

    With Redis, every process counts in the same place; when Redis does not answer, requests are let
    through (logged): losing the limit for a moment is better than refusing every device.
    """

    def __init__(self, redis_url: str | None = None, namespace: str = "telemetra") -> None:
        self.shared = redis_url is not None
        self._storage: Storage
        if redis_url is not None:
            self._storage = storage_from_string("async+" + redis_url, implementation="redispy",
                                                key_prefix=f"{namespace}:rl", socket_timeout=2,
                                                socket_connect_timeout=2)
        else:
            self._storage = MemoryStorage()
        self._strategy = SlidingWindowCounterRateLimiter(self._storage)
        self._storage_down_since: float | None = None

    async def hit(self, name: str, item: RateLimitItem, *identifiers: str, cost: int = 1) -> Verdict:
        """Count ``cost`` hits of ``identifiers`` against ``item``; say whether they were allowed."""
        return await self._ask(self._strategy.hit(item, name, *identifiers, cost=cost), name, item, identifiers)

    async def test(self, name: str, item: RateLimitItem, *identifiers: str) -> Verdict:
        """Say whether one more hit would be allowed, without counting it."""
        return await self._ask(self._strategy.test(item, name, *identifiers), name, item, identifiers)

    async def _ask(self, decision: Awaitable[bool], name: str, item: RateLimitItem,
                   identifiers: tuple[str, ...]) -> Verdict:
        try:
            allowed = await decision
            stats = await self._strategy.get_window_stats(item, name, *identifiers)
        except Exception as exc:  # noqa: BLE001  (any storage failure: Redis down, a timeout)
            self._storage_failed(exc)
            return Verdict(True, item.amount, item.amount, 0, name)
        self._storage_back()
        reset_after = max(0, math.ceil(stats.reset_time - time.time()))
        return Verdict(allowed, item.amount, max(0, stats.remaining), reset_after, name)

    def _storage_failed(self, exc: Exception) -> None:
        if self._storage_down_since is None:
            self._storage_down_since = time.monotonic()
            logger.warning("rate-limit storage unavailable (%s); requests are not limited until it is back",
                           type(exc).__name__)

    def _storage_back(self) -> None:
        if self._storage_down_since is not None:
            logger.warning("rate-limit storage is back after %.0f s", time.monotonic() - self._storage_down_since)
            self._storage_down_since = None
