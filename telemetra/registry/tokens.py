"""Device login tokens (JWT): signed with one pinned algorithm, short-lived, tied to one password.

A token names its password by version and by the password's random id (`cid`): the version restarts at 1
for a device deleted and registered again under the same id, the random id never comes back.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

from telemetra.errors import ConfigError, Unauthorized
from telemetra.settings import Settings

logger = logging.getLogger(__name__)
__all__ = ["TokenCodec", "TokenClaims"]

REQUIRED_CLAIMS = ["exp", "iat", "sub", "tid", "ver", "cid"]
# Clocks of two processes may differ a little; a token is not refused for a second or two of that.
CLOCK_LEEWAY_S = 5


@dataclass(frozen=True, slots=True)
class TokenClaims:
    device_id: str
    tenant_id: int
    password_version: int
    credential_id: str


class TokenCodec:
    """Issue and check tokens with the configured algorithm; any other algorithm (or `none`) is refused."""

    def __init__(self, settings: Settings) -> None:
        self.algorithm = settings.jwt_algorithm
        self.lifetime_s = settings.jwt_lifetime_s
        self._warn_own_secret = self.algorithm == "HS256" and settings.jwt_secret is None
        if self.algorithm == "HS256":
            secret = settings.jwt_secret or secrets.token_urlsafe(48)
            self._signing_key: Any = secret
            self._verifying_key: Any = secret
        else:
            self._signing_key = _read(settings.jwt_private_key_file, "TELEMETRA_JWT_PRIVATE_KEY_FILE")
            self._verifying_key = _read(settings.jwt_public_key_file, "TELEMETRA_JWT_PUBLIC_KEY_FILE")

    def issue(self, claims: TokenClaims, now: datetime) -> str:
        """Return a signed token for the claims, valid ``lifetime_s`` from ``now``."""
        if self._warn_own_secret:  # said at the first login, not by every process that never issues one
            self._warn_own_secret = False
            logger.warning(
                "TELEMETRA_JWT_SECRET is not set: device tokens are signed with a secret of this "
                "process and are refused by any other"
            )
        payload = {
            "sub": claims.device_id,
            "tid": claims.tenant_id,
            "ver": claims.password_version,
            "cid": claims.credential_id,
            "iat": now,
            "exp": now + timedelta(seconds=self.lifetime_s),
        }
        return jwt.encode(payload, self._signing_key, algorithm=self.algorithm)

    def check(self, token: str) -> TokenClaims:
        """Return the claims of a valid token; Unauthorized (401) for an expired, forged or malformed one."""
        try:
            payload = jwt.decode(
                token,
                self._verifying_key,
                algorithms=[self.algorithm],
                leeway=CLOCK_LEEWAY_S,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized(
                "The token has expired; log in again at POST /auth/login.", code="token_expired"
            ) from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(
                "The token is invalid; log in at POST /auth/login for a new one.", code="invalid_token"
            ) from exc
        sub, tid, ver, cid = payload["sub"], payload["tid"], payload["ver"], payload["cid"]
        if not isinstance(sub, str) or type(tid) is not int or type(ver) is not int or not isinstance(cid, str):
            raise Unauthorized("The token is invalid; log in at POST /auth/login for a new one.", code="invalid_token")
        return TokenClaims(device_id=sub, tenant_id=tid, password_version=ver, credential_id=cid)


def _read(path: str | None, setting: str) -> bytes:
    try:
        return Path(path or "").read_bytes()
    except OSError as exc:
        raise ConfigError(f"Invalid setting: {setting}: cannot read {path}: {exc.strerror}") from exc
