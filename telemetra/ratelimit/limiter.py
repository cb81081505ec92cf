"""Counting hits against `limits` rates, in this process's memory or in Redis."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
from limits.aio.strategies import RateLimiter as Strategy
from limits.storage import storage_from_string

from telemetra.errors import TooManyRequests

logger = logging.getLogger(__name__)
__all__ = ["RateLimiter", "Verdict", "parse_rate"]


def _note_key(name: str, identifiers: tuple[str, ...]) -> str:
    return "/".join(("note", name, *identifiers))


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
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_after_s),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.reset_after_s))
        return headers

    def refuse(self, message: str | None = None) -> TooManyRequests:
        return TooManyRequests(
            message or f"Rate limit '{self.name}' exceeded; retry after {max(1, self.reset_after_s)} s.",
            headers=self.headers(),
        )


class RateLimiter:
    """Sliding-window counters (two counters per key, so 6,000/min costs no more than 60/min).

    With Redis, every process counts in the same place; when Redis does not answer, requests are let
    through (logged): losing the limit for a moment is better than refusing every device.
    """

    def __init__(self, redis_url: str | None = None, namespace: str = "telemetra") -> None:
        self.shared = redis_url is not None
        self._storage: Storage
        if redis_url is not None:
            storage = storage_from_string(
                "async+" + redis_url,
                implementation="redispy",
                key_prefix=f"{namespace}:rl",
                socket_timeout=2,
                socket_connect_timeout=2,
            )
            assert isinstance(storage, Storage)  # an "async+" URL gives an asyncio storage
            self._storage = storage
        else:
            self._storage = MemoryStorage()
        self._strategy: Strategy = SlidingWindowCounterRateLimiter(self._storage)
        # Keeps the time of every hit: exact over any span of the period (the two counters above let a
        # burst across a window boundary through with a hit or more too many), at a cost per hit, so it is
        # for small budgets where one too many matters (logins).
        self._exact: Strategy = MovingWindowRateLimiter(self._storage)
        self._storage_down_since: float | None = None

    async def hit(
        self, name: str, item: RateLimitItem, *identifiers: str, cost: int = 1, exact: bool = False
    ) -> Verdict:
        """Count ``cost`` hits of ``identifiers`` against ``item`` and say whether they were allowed, in one
        atomic step (a Lua script in Redis): of hits arriving at once, no more than the budget are allowed.
        ``exact`` keeps every hit's time (see ``_exact``); a name is always counted the same way."""
        strategy = self._exact if exact else self._strategy
        return await self._ask(strategy, strategy.hit(item, name, *identifiers, cost=cost), name, item, identifiers)

    async def reset(self, name: str, item: RateLimitItem, *identifiers: str, exact: bool = False) -> None:
        """Forget the hits of ``identifiers`` against ``item`` (a successful sign-in starts its count again)."""
        strategy = self._exact if exact else self._strategy
        try:
            await strategy.clear(item, name, *identifiers)
        except Exception as exc:  # noqa: BLE001  (as in _ask: a count kept only makes the limit stricter)
            self._storage_failed(exc)

    async def test(self, name: str, item: RateLimitItem, *identifiers: str) -> Verdict:
        """Say whether one more hit would be allowed, without counting it."""
        return await self._ask(self._strategy, self._strategy.test(item, name, *identifiers), name, item, identifiers)

    async def remember(self, name: str, ttl_s: int, *identifiers: str) -> None:
        """Note ``identifiers`` under ``name`` for ``ttl_s`` seconds from now (a new note restarts the time)."""
        key = _note_key(name, identifiers)
        try:
            await self._storage.clear(key)  # the expiry is set by the first increment only
            await self._storage.incr(key, ttl_s)
        except Exception as exc:  # noqa: BLE001  (as in _ask: a lost note only costs a stricter limit)
            self._storage_failed(exc)

    async def remembers(self, name: str, *identifiers: str) -> bool:
        """Tell whether ``identifiers`` were noted under ``name`` and the note has not expired."""
        try:
            found = await self._storage.get(_note_key(name, identifiers)) > 0
        except Exception as exc:  # noqa: BLE001
            self._storage_failed(exc)
            return False
        self._storage_back()
        return found

    async def close(self) -> None:
        """Close the connections to Redis (nothing to do in memory)."""
        # `limits` has no close of its own; its Redis bridge holds the redis-py client as `storage`.
        client = getattr(getattr(self._storage, "bridge", None), "storage", None)
        if client is not None:
            await client.aclose()

    async def _ask(
        self,
        strategy: Strategy,
        decision: Awaitable[bool],
        name: str,
        item: RateLimitItem,
        identifiers: tuple[str, ...],
    ) -> Verdict:
        try:
            allowed = await decision
            stats = await strategy.get_window_stats(item, name, *identifiers)
        except Exception as exc:  # noqa: BLE001  (any storage failure: Redis down, a timeout)
            self._storage_failed(exc)
            return Verdict(True, item.amount, item.amount, 0, name)
        self._storage_back()
        reset_after = max(0, math.ceil(stats.reset_time - time.time()))
        return Verdict(allowed, item.amount, max(0, stats.remaining), reset_after, name)

    def _storage_failed(self, exc: Exception) -> None:
        if self._storage_down_since is None:
            self._storage_down_since = time.monotonic()
            logger.warning(
                "rate-limit storage unavailable (%s); requests are not limited until it is back", type(exc).__name__
            )

    def _storage_back(self) -> None:
        if self._storage_down_since is not None:
            logger.warning("rate-limit storage is back after %.0f s", time.monotonic() - self._storage_down_since)
            self._storage_down_since = None
