"""DeliveryResult: what one attempt to hand a notification to its receiver came to.

Every sender returns one instead of raising, so the dispatcher records each attempt the same way and
decides from ``retryable`` alone whether to try again later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DeliveryResult", "MAX_ERROR_CHARS", "redact_error"]

# The error text is stored with each attempt and logged; a receiver's answer can be arbitrarily long.
MAX_ERROR_CHARS = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """The outcome of one delivery attempt.

    ``retryable`` is False when sending the same notification again cannot succeed until someone changes
    the channel or the receiver (a 404, a refused recipient, a wrong password), True for trouble that
    may pass (a timeout, a refused connection, a 5xx, a 429). It is meaningless when ``ok`` is True.
    ``retry_after_s`` carries a receiver's ``Retry-After`` when it sent one.
    """

    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: float
    retryable: bool
    retry_after_s: float | None = None


def redact_error(text: str, *secrets: str | None) -> str:
    """Return ``text`` fit to store and log: each secret masked, control characters folded, shortened."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "********")
    # Line breaks from a remote answer would forge extra lines in our log.
    text = _CONTROL.sub(" ", text).strip()
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 1] + "…"
    return text
