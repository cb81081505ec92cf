"""Webhook signatures: ``X-Telemetra-Signature: sha256=<hex HMAC-SHA256 of the body>``.

The HMAC covers the exact bytes sent, so a receiver must verify the raw body before parsing it (a
re-serialised JSON document rarely has the same bytes). Same scheme as GitHub's ``X-Hub-Signature-256``.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["SIGNATURE_HEADER", "SIGNATURE_PREFIX", "sign", "verify"]

SIGNATURE_HEADER = "X-Telemetra-Signature"
SIGNATURE_PREFIX = "sha256="


def sign(secret: str, body: bytes) -> str:
    """Return the signature header value of ``body`` under ``secret``."""
    if not secret:
        raise ValueError("A webhook secret is required to sign a body.")
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def verify(secret: str, body: bytes, header: str) -> bool:
    """Return whether ``header`` is the signature of ``body`` under ``secret``, in constant time."""
    if not secret or not header:
        # An empty secret would make every forger's signature valid.
        return False
    expected = sign(secret, body).encode("ascii")
    # Bytes, not str: compare_digest refuses non-ASCII str, and a forged header may hold anything.
    given = header.strip().lower().encode("utf-8", "surrogateescape")
    return hmac.compare_digest(expected, given)
