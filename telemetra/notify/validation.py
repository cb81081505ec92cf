"""Checks shared by the channel configurations; each failure is a ValueError that says what to fix.

Messages are shown to the tenant who configured the channel, so they name the field and never echo a
secret value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["MAX_TIMEOUT_S", "check_keys", "check_text", "check_timeout"]

# The dispatcher leases a notification for 120 s; a send must end well within its lease, or another
# worker could claim and send it again while the first is still waiting.
MAX_TIMEOUT_S = 60.0


def check_keys(data: Any, kind: str, *, required: Iterable[str], optional: Iterable[str]) -> Mapping[str, Any]:
    """Return ``data`` if it is an object holding every required key and no unknown one."""
    if not isinstance(data, Mapping):
        raise ValueError(f"a {kind} configuration must be a JSON object")
    required, optional = list(required), list(optional)
    missing = [k for k in required if data.get(k) is None]
    if missing:
        raise ValueError(f"a {kind} configuration needs {', '.join(missing)}")
    # A misspelt optional key (timeout instead of timeout_s) would otherwise be ignored without a word.
    unknown = sorted(str(k) for k in data if k not in required and k not in optional)
    if unknown:
        raise ValueError(
            f"unknown {kind} setting {', '.join(unknown)}; known ones are {', '.join(required + optional)}"
        )
    return data


def check_text(value: Any, name: str, *, max_chars: int = 1000) -> str:
    """Return ``value`` if it is a non-empty string on one line."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    if len(value) > max_chars:
        raise ValueError(f"{name} must be at most {max_chars} characters")
    if any(ch in value for ch in "\r\n\x00"):
        raise ValueError(f"{name} must be on one line")
    return value


def check_timeout(value: Any, name: str = "timeout_s") -> float:
    """Return ``value`` as seconds if it is a number in (0, MAX_TIMEOUT_S]."""
    # bool is an int subclass, and `true` is never meant as one second.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number of seconds")
    if not 0 < value <= MAX_TIMEOUT_S:
        raise ValueError(f"{name} must be more than 0 and at most {MAX_TIMEOUT_S:g} seconds")
    return float(value)
