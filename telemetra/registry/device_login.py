"""Seed 003's device login: a device id and password give a short-lived token; the token names the device.

How guessing is bounded, and why the owner is not locked out by it:

- Every attempt is counted before its password is checked, by one atomic increment-and-test (`limits`' hit,
  a Lua script in Redis), so however many arrive at once, no more than a budget's worth are checked.
- Per client address (`TELEMETRA_LOGIN_FAILURES_PER_IP`): every attempt, whatever device it names.
- Per device (`TELEMETRA_LOGIN_FAILURES_PER_DEVICE`): the attempts from addresses the device has not logged in
  from lately share one budget; each address it has logged in from within `TELEMETRA_LOGIN_KNOWN_ADDRESS_TTL_S`
  has a budget of its own. A guesser, from one address or from many, spends the shared budget and is then
  refused (429 until the window has passed), while the owner's usual address still has its own: a per-device
  lock-out refused the right password to everyone, the owner first. A device that has never logged in, or
  comes from a new address while it is attacked, waits for the window like the attacker.
- At most `MAX_CONCURRENT_HASHES` argon2 checks run at once (64 MiB each); `MAX_WAITING_CHECKS` more may wait
  for a slot (without holding a thread), and past that a login is answered 503 at once.
"""

from __future__ import annotations

import asyncio
import logging
import secrets

from limits import RateLimitItem
from prometheus_client import Counter

from telemetra.domain.ids import DEVICE_ID_PATTERN
from telemetra.domain.models import Device
from telemetra.domain.timeparse import utcnow
from telemetra.errors import ServiceUnavailable, Unauthorized
from telemetra.ratelimit.limiter import RateLimiter, parse_rate
from telemetra.ratelimit.policy import RATE_LIMITED
from telemetra.registry.activity import ActivityRecorder
from telemetra.registry.passwords import (
    MAX_CONCURRENT_HASHES,
    MAX_PASSWORD_LENGTH,
    check_password_rules,
    hash_password,
    verify_password,
)
from telemetra.registry.tokens import TokenClaims, TokenCodec
from telemetra.settings import Settings
from telemetra.store import Store

logger = logging.getLogger(__name__)
__all__ = ["DeviceLogin", "LoginBusy", "BoundedPasswordChecks", "PASSWORD_CHECKS"]

MAX_DEVICE_ID_LENGTH = 128
# Logins waiting for an argon2 slot: each is a suspended request (a few kB, no thread); with two checks of
# ~0.1 s at a time, the last one waits about 3 s. Past it, a burst is refused rather than queued.
MAX_WAITING_CHECKS = 64
# Every id that cannot be a device's (DEVICE_ID_PATTERN) shares one budget; none of them can ever log in.
INVALID_ID_BUCKET = "(invalid id)"

PASSWORD_CHECKS = Counter(
    "telemetra_login_password_checks_total", "Device logins whose password was checked (argon2), by result", ["result"]
)


class LoginBusy(ServiceUnavailable):
    code = "login_busy"
    default_message = "Too many logins are being checked right now; retry after the Retry-After delay."

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "1"})


class BoundedPasswordChecks:
    """Password checks in one of the few argon2 slots (device logins and people's sign-ins each hold one set);
    LoginBusy (503) when too many already wait, so a flood of guesses cannot queue without bound."""

    def __init__(self) -> None:
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_HASHES)
        self._waiting = 0

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        if self._waiting >= MAX_WAITING_CHECKS:
            logger.warning("login refused: %d password checks already waiting", self._waiting)
            raise LoginBusy()
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            return await verify_password(stored_hash, password)
        finally:
            self._slots.release()


def _wrong_credentials() -> Unauthorized:
    # One answer for an unknown device, a device without a password and a wrong password.
    return Unauthorized("The device id or the password is wrong.", code="invalid_credentials")


def _revoked() -> Unauthorized:
    return Unauthorized(
        "The token is no longer valid (the password changed or the device is gone); log in again at POST /auth/login.",
        code="token_revoked",
    )


class DeviceLogin:
    def __init__(
        self, store: Store, codec: TokenCodec, limiter: RateLimiter, activity: ActivityRecorder, settings: Settings
    ) -> None:
        self._store = store
        self._codec = codec
        self._limiter = limiter
        self._activity = activity
        self._per_device = parse_rate(settings.login_failures_per_device)
        self._per_ip = parse_rate(settings.login_failures_per_ip)
        self._known_ttl_s = settings.login_known_address_ttl_s
        self._checks = BoundedPasswordChecks()

    @property
    def lifetime_s(self) -> int:
        return self._codec.lifetime_s

    async def set_password(self, device: Device, password: str) -> None:
        """Set or change a device's password; tokens issued before stop working at once."""
        check_password_rules(password)
        version = await self._store.set_device_password(
            device.pk, await hash_password(password), secrets.token_hex(16), utcnow()
        )
        logger.info("device password set id=%s version=%s", device.id, version)

    async def login(self, device_id: str, password: str, client: str) -> str:
        """Return a token for the device; 401 when the id or password is wrong, 429 past the login budgets."""
        valid_id = len(device_id) <= MAX_DEVICE_ID_LENGTH and DEVICE_ID_PATTERN.fullmatch(device_id) is not None
        device_key = device_id if valid_id else INVALID_ID_BUCKET
        await self._count_attempt(device_key, client)
        device = await self._store.get_device(device_id) if valid_id else None
        credential = await self._store.device_password(device.pk) if device is not None else None
        usable = len(password) <= MAX_PASSWORD_LENGTH
        matched = await self._check(credential[0] if credential and usable else None, password if usable else "")
        if not matched or device is None or credential is None:
            logger.warning("login failed device=%s client=%s", device_key, client)
            raise _wrong_credentials()
        await self._limiter.remember("login_known_address", self._known_ttl_s, device_key, client)
        token = self._codec.issue(TokenClaims(device.id, device.tenant_id, credential[1], credential[2]), utcnow())
        logger.info("device logged in id=%s", device.id)
        return token

    async def _count_attempt(self, device_key: str, client: str) -> None:
        """Count the attempt against its budgets (see the module docstring); 429 past one of them."""
        # The address first: an address past its own budget does not spend the device's.
        budgets: list[tuple[str, RateLimitItem, tuple[str, ...], str]] = [
            ("login_address", self._per_ip, (client,), "TELEMETRA_LOGIN_FAILURES_PER_IP")
        ]
        if await self._limiter.remembers("login_known_address", device_key, client):
            budgets.append(
                ("login_device_address", self._per_device, (device_key, client), "TELEMETRA_LOGIN_FAILURES_PER_DEVICE")
            )
        else:
            budgets.append(("login_device", self._per_device, (device_key,), "TELEMETRA_LOGIN_FAILURES_PER_DEVICE"))
        for name, item, who, setting in budgets:
            verdict = await self._limiter.hit(name, item, *who, exact=True)
            if not verdict.allowed:
                RATE_LIMITED.labels(name).inc()
                logger.info("login refused: too many attempts (%s) device=%s client=%s", name, device_key, client)
                raise verdict.refuse(
                    f"Too many logins ({name}, {setting}: {item}); retry after {max(1, verdict.reset_after_s)} s."
                )

    async def _check(self, stored_hash: str | None, password: str) -> bool:
        matched = await self._checks.verify(stored_hash, password)
        PASSWORD_CHECKS.labels("accepted" if matched else "refused").inc()
        return matched

    async def authenticate(self, token: str | None) -> Device:
        """Return the device a token was issued to; 401 when it is missing, invalid, expired or revoked."""
        if not token:
            raise Unauthorized(
                "A token is required: log in at POST /auth/login and send it in the 'token' "
                "header or as 'Authorization: Bearer <token>'.",
                code="missing_token",
            )
        claims = self._codec.check(token)
        device = await self._store.get_device(claims.device_id)
        if device is None or device.tenant_id != claims.tenant_id:
            raise _revoked()
        credential = await self._store.device_password(device.pk)
        # The random id, not the version alone: a device deleted and registered again under the same id
        # starts at version 1 again, and the deleted device's tokens must not fit its password.
        if credential is None or (credential[1], credential[2]) != (claims.password_version, claims.credential_id):
            raise _revoked()
        self._activity.device_seen(device.pk, utcnow())
        return device
