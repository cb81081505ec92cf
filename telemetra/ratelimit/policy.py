"""Which limit a request counts against, and its rate: a tenant's or device's own, or the default."""

from __future__ import annotations

import asyncio
import logging
import time

from limits import RateLimitItem
from prometheus_client import Counter

from telemetra.ratelimit.limiter import RateLimiter, Verdict, parse_rate
from telemetra.settings import Settings
from telemetra.store import Store

logger = logging.getLogger(__name__)
__all__ = ["RateLimitPolicy", "LIMIT_NAMES", "limit_name", "RATE_LIMITED"]

LIMIT_NAMES = ("device", "device_telemetry", "tenant", "batch")
TELEMETRY_ROUTES = frozenset({("POST", "/api/v1/devices/telemetry"), ("POST", "/data"), ("POST", "/data/")})
# A device or gateway replaying its buffer after an outage sends through these: a budget of their own, so
# the replay is not cut off by, and does not eat, the per-request budgets.
BATCH_ROUTES = frozenset({("POST", "/api/v1/telemetry/batch"), ("POST", "/api/v1/devices/telemetry/batch")})
# Overrides are read from the database at most this often per process: a changed limit applies within it.
OVERRIDES_TTL_S = 5.0

RATE_LIMITED = Counter("telemetra_rate_limited_total", "Requests refused with 429, by limit", ["limit"])


def limit_name(kind: str, method: str, route: str) -> str | None:
    """Name the limit a request of a key ``kind`` on ``route`` counts against (None: not limited)."""
    if kind == "admin":
        return None
    if (method, route) in BATCH_ROUTES:
        return "batch"
    if kind == "device":
        return "device_telemetry" if (method, route) in TELEMETRY_ROUTES else "device"
    return "tenant"


class RateLimitPolicy:
    def __init__(self, store: Store, limiter: RateLimiter, settings: Settings) -> None:
        self._store = store
        self._limiter = limiter
        self.enabled = settings.rate_limits_enabled
        self._defaults: dict[str, RateLimitItem] = {
            "device": parse_rate(settings.rate_limit_device),
            "device_telemetry": parse_rate(settings.rate_limit_device_telemetry),
            "tenant": parse_rate(settings.rate_limit_tenant),
            "batch": parse_rate(settings.rate_limit_batch),
        }
        self._overrides: dict[tuple[int, int | None, str], RateLimitItem] = {}
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    async def enforce(
        self, kind: str, method: str, route: str, *, tenant_id: int | None, device_pk: int | None
    ) -> Verdict | None:
        """Count the request; TooManyRequests (429) past its limit. None when it is not limited."""
        name = limit_name(kind, method, route)
        if not self.enabled or name is None or tenant_id is None:
            return None
        item = await self.rate(name, tenant_id, device_pk)
        who = f"device:{device_pk}" if device_pk is not None else f"tenant:{tenant_id}"
        verdict = await self._limiter.hit(name, item, who)
        if not verdict.allowed:
            RATE_LIMITED.labels(name).inc()
            logger.info("rate limited limit=%s %s", name, who)
            raise verdict.refuse(
                f"Rate limit '{name}' of {item.amount} per {_period(item)} exceeded; retry after "
                f"{max(1, verdict.reset_after_s)} s."
            )
        return verdict

    async def rate(self, name: str, tenant_id: int, device_pk: int | None) -> RateLimitItem:
        """The rate of limit ``name`` for a device (its own, else its tenant's) or a tenant, else the default."""
        await self._refresh()
        if device_pk is not None and (tenant_id, device_pk, name) in self._overrides:
            return self._overrides[(tenant_id, device_pk, name)]
        return self._overrides.get((tenant_id, None, name), self._defaults[name])

    def defaults(self) -> dict[str, str]:
        return {name: str(item) for name, item in self._defaults.items()}

    def forget_overrides(self) -> None:
        """Read the overrides again at the next request (this process changed them)."""
        self._loaded_at = float("-inf")

    async def _refresh(self) -> None:
        if time.monotonic() - self._loaded_at < OVERRIDES_TTL_S:
            return
        async with self._lock:
            if time.monotonic() - self._loaded_at < OVERRIDES_TTL_S:
                return
            rows = await self._store.rate_limit_overrides()
            self._overrides = {
                (tenant_id, device_pk, name): parse_rate(rate) for tenant_id, device_pk, name, rate in rows
            }
            self._loaded_at = time.monotonic()


def _period(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    return unit if item.multiples == 1 else f"{item.multiples} {unit}s"
