"""Seed 003's device login: a device id and password give a short-lived token; the token names the device."""

from __future__ import annotations

import logging

from telemetra.domain.models import Device
from telemetra.domain.timeparse import utcnow
from telemetra.errors import Unauthorized
from telemetra.ratelimit.limiter import RateLimiter, parse_rate
from telemetra.registry.activity import ActivityRecorder
from telemetra.registry.passwords import MAX_PASSWORD_LENGTH, check_password_rules, hash_password, verify_password
from telemetra.registry.tokens import TokenClaims, TokenCodec
from telemetra.settings import Settings
from telemetra.store import Store

logger = logging.getLogger(__name__)
__all__ = ["DeviceLogin"]

MAX_DEVICE_ID_LENGTH = 128


def _wrong_credentials() -> Unauthorized:
    # One answer for an unknown device, a device without a password and a wrong password.
    return Unauthorized("The device id or the password is wrong.", code="invalid_credentials")


def _revoked() -> Unauthorized:
    return Unauthorized("The token is no longer valid (the password changed or the device is gone); log in "
                        "again at POST /auth/login.", code="token_revoked")


class DeviceLogin:
    def __init__(self, store: Store, codec: TokenCodec, limiter: RateLimiter, activity: ActivityRecorder,
                 settings: Settings) -> None:
        self._store = store
        self._codec = codec
        self._limiter = limiter
        self._activity = activity
        self._per_device = parse_rate(settings.login_failures_per_device)
        self._per_ip = parse_rate(settings.login_failures_per_ip)

    @property
    def lifetime_s(self) -> int:
        return self._codec.lifetime_s

    async def set_password(self, device: Device, password: str) -> None:
        """Set or change a device's password; tokens issued before stop working at once."""
        check_password_rules(password)
        version = await self._store.set_device_password(device.pk, await hash_password(password), utcnow())
        logger.info("device password set id=%s version=%s", device.id, version)

    async def login(self, device_id: str, password: str, client: str) -> str:
        """Return a token for the device; 401 when the id or password is wrong, 429 after repeated failures."""
        device_key = device_id[:MAX_DEVICE_ID_LENGTH]
        for name, item, who in (("login_failures_device", self._per_device, device_key),
                                ("login_failures_ip", self._per_ip, client)):
            verdict = await self._limiter.test(name, item, who)
            if not verdict.allowed:
                logger.warning("login refused: too many failures (%s) device=%s client=%s", name, device_key, client)
                raise verdict.refuse(f"Too many failed logins ({name}: {item}); retry after "
                                     f"{max(1, verdict.reset_after_s)} s.")
        device = await self._store.get_device(device_id) if len(device_id) <= MAX_DEVICE_ID_LENGTH else None
        credential = await self._store.device_password(device.pk) if device is not None else None
        usable = len(password) <= MAX_PASSWORD_LENGTH
        matched = await verify_password(credential[0] if credential and usable else None,
                                        password if usable else "")
        if not matched or device is None or credential is None:
            await self._limiter.hit("login_failures_device", self._per_device, device_key)
            await self._limiter.hit("login_failures_ip", self._per_ip, client)
            logger.warning("login failed device=%s client=%s", device_key, client)
            raise _wrong_credentials()
        token = self._codec.issue(TokenClaims(device.id, device.tenant_id, credential[1]), utcnow())
        logger.info("device logged in id=%s", device.id)
        return token

    async def authenticate(self, token: str | None) -> Device:
        """Return the device a token was issued to; 401 when it is missing, invalid, expired or revoked."""
        if not token:
            raise Unauthorized("A token is required: log in at POST /auth/login and send it in the 'token' "
                               "header or as 'Authorization: Bearer <token>'.", code="missing_token")
        claims = self._codec.check(token)
        device = await self._store.get_device(claims.device_id)
        if device is None or device.tenant_id != claims.tenant_id:
            raise _revoked()
        credential = await self._store.device_password(device.pk)
        if credential is None or credential[1] != claims.password_version:
            raise _revoked()
        self._activity.device_seen(device.pk, utcnow())
        return device
