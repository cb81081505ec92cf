"""Rate limits: counters in memory or in Redis (shared by every process), and which limit applies where."""

from telemetra.ratelimit.limiter import RateLimiter, Verdict

__all__ = ["RateLimiter", "Verdict"]
