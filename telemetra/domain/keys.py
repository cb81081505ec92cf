"""API key generation and hashing.

Keys carry 256 random bits, so a single SHA-256 is as strong as any slow hash against guessing, and a
lookup by hash costs microseconds on every request (slow password hashes are for device passwords).
"""

from __future__ import annotations

import hashlib
import secrets

from telemetra.domain.models import KeyKind

__all__ = ["KEY_PREFIXES", "generate_key", "hash_key", "visible_prefix"]

# A kind-specific prefix lets secret scanners and people tell keys apart at a glance.
KEY_PREFIXES: dict[KeyKind, str] = {"admin": "tlma_", "tenant": "tlmt_", "device": "tlmd_"}
VISIBLE_RANDOM_CHARS = 6


def generate_key(kind: KeyKind) -> str:
    """Return a new key of ``kind``: its prefix and 32 random bytes, URL-safe."""
    return KEY_PREFIXES[kind] + secrets.token_urlsafe(32)


def hash_key(key: str) -> bytes:
    """Return the digest stored in place of ``key``."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def visible_prefix(key: str) -> str:
    """Return the part of ``key`` safe to show in listings and logs."""
    head, _, rest = key.partition("_")
    return f"{head}_{rest[:VISIBLE_RANDOM_CHARS]}" if rest else key[:VISIBLE_RANDOM_CHARS]
