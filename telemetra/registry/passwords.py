"""Device passwords: argon2id hashes, verified in a thread and in constant time whoever is asked about.

Passwords are chosen by people and so guessable, unlike our 256-bit keys: they get a slow, memory-hard
hash (argon2-cffi's defaults, RFC 9106's low-memory profile: 64 MiB, 3 passes, ~0.1 s here).
"""

from __future__ import annotations

import asyncio
import functools
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from telemetra.errors import ValidationFailed

__all__ = ["hash_password", "verify_password", "check_password_rules", "MIN_PASSWORD_LENGTH", "MAX_PASSWORD_LENGTH"]

MIN_PASSWORD_LENGTH = 8
# Long enough for any passphrase, short enough that hashing one is no denial-of-service lever.
MAX_PASSWORD_LENGTH = 256

_hasher = PasswordHasher()
# Each hash takes ~0.1 s of CPU and 64 MiB: a burst of logins waits its turn here instead of taking every
# core (and the memory) from the rest of the server.
MAX_CONCURRENT_HASHES = 2
_hash_slots = threading.BoundedSemaphore(MAX_CONCURRENT_HASHES)


@functools.cache
def _dummy_hash() -> str:
    # Verified when the device is unknown or has no password, so that the answer takes as long as for a
    # wrong password: timing does not tell which device ids exist.
    return _hasher.hash("no device has this password")


def check_password_rules(password: object, *, min_length: int = MIN_PASSWORD_LENGTH, field: str = "password") -> str:
    """Return the password if it may be set; ValidationFailed (422) otherwise."""
    if not isinstance(password, str) or not min_length <= len(password) <= MAX_PASSWORD_LENGTH:
        raise ValidationFailed(
            f"'{field}' must be a string of {min_length}-{MAX_PASSWORD_LENGTH} characters",
            code="invalid_password",
        )
    if "\x00" in password:
        raise ValidationFailed(f"'{field}' must not hold a NUL character", code="invalid_password")
    return password


def _hash(password: str) -> str:
    with _hash_slots:
        return _hasher.hash(password)


async def hash_password(password: str) -> str:
    """Return the argon2id hash of ``password`` (computed in a thread: it takes ~0.1 s of CPU)."""
    return await asyncio.to_thread(_hash, password)


def _verify(stored_hash: str | None, password: str) -> bool:
    with _hash_slots:
        try:
            return _hasher.verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


async def verify_password(stored_hash: str | None, password: str) -> bool:
    """Tell whether ``password`` matches ``stored_hash``; a None hash costs the same and answers False."""
    return await asyncio.to_thread(_verify, stored_hash, password)
