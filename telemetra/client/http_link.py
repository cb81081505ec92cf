"""The device client's HTTP side: its key, or a login token renewed before it expires; the batch route, the
heartbeat (commands and desired state), command acks and the reported state."""

from __future__ import annotations

import logging
import ssl
import threading
import time
from typing import Any

import httpx

from telemetra.client.config import DeviceConfig

logger = logging.getLogger("telemetra.client")
__all__ = ["HttpLink", "Unreachable", "AuthenticationFailed", "BatchTooLarge"]

RETRY_LOGIN_CODES = ("token_expired", "invalid_token", "token_revoked", "missing_token")


class Unreachable(Exception):
    """The platform did not take it this time (down, slow, overloaded, 5xx): keep it and retry later."""


class AuthenticationFailed(Exception):
    """The key or password is refused: retrying cannot help."""


class BatchTooLarge(Exception):
    pass


def _code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("code", "")) if isinstance(body, dict) else ""


class HttpLink:
    def __init__(self, config: DeviceConfig) -> None:
        self._config = config
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=config.ca_file) if config.ca_file else True
        self._http = httpx.Client(base_url=config.url.rstrip("/"), timeout=config.timeout_s, verify=verify)
        self._token: str | None = None
        self._renew_at = 0.0
        self._login_lock = threading.Lock()
        self.logins = 0

    def close(self) -> None:
        self._http.close()

    # -- authentication ---------------------------------------------------------------------------
    def _auth_headers(self) -> dict[str, str]:
        if self._config.key:
            return {"X-API-Key": self._config.key}
        with self._login_lock:  # the reading thread (heartbeats) and the sender share the token
            if self._token is None or time.monotonic() >= self._renew_at:
                self.login()
            return {"Authorization": f"Bearer {self._token}"}

    def login(self) -> None:
        """Log in with the password (seed 003's POST /auth/login); AuthenticationFailed when it is wrong."""
        body = {"device_id": self._config.device_id, "password": self._config.password}
        try:
            response = self._http.post("/auth/login", json=body)
        except httpx.HTTPError as exc:
            raise Unreachable(f"login: {type(exc).__name__}") from exc
        if response.status_code in (400, 401, 403, 404, 422):
            raise AuthenticationFailed(
                f"login refused for device '{self._config.device_id}' ({response.status_code} {_code(response)}): "
                "check device_id and password"
            )
        if response.status_code != 200:
            raise Unreachable(f"login answered {response.status_code}")
        answer = response.json()
        lifetime = float(answer.get("expires_in", 900))
        renewed = self._token is not None
        self._token = answer["token"]
        # Before it expires, with room for a slow answer; never later than half its life.
        self._renew_at = time.monotonic() + max(1.0, min(lifetime - self._config.renew_before_s, lifetime / 2))
        self.logins += 1
        logger.info("token %s (valid %d s)", "renewed" if renewed else "obtained", lifetime)

    def request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        """The answer of a 2xx or 4xx but 401; Unreachable for no answer, 429 or 5xx."""
        for attempt in (0, 1):
            try:
                response = self._http.request(method, path, json=body, headers=self._auth_headers())
            except httpx.HTTPError as exc:
                raise Unreachable(f"{method} {path}: {type(exc).__name__}") from exc
            if response.status_code == 401:
                code = _code(response)
                if self._config.password and attempt == 0 and code in RETRY_LOGIN_CODES:
                    self._token = None  # expired, or signed by a server since restarted: log in again
                    continue
                raise AuthenticationFailed(f"{method} {path} answered 401 {code}: the device's credentials are refused")
            if response.status_code == 403:  # a key of another kind (a tenant's): not the device's
                raise AuthenticationFailed(f"{method} {path} answered 403 {_code(response)}: give the device's own key")
            if response.status_code == 429 or response.status_code >= 500:
                raise Unreachable(f"{method} {path} answered {response.status_code}")
            return response
        raise AuthenticationFailed(f"{method} {path}: a fresh token was refused")

    # -- what the device does ---------------------------------------------------------------------
    def send_batch(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send messages in order; return those the platform refused for good (they are not sent again)."""
        response = self.request("POST", "/api/v1/devices/telemetry/batch", messages)
        if response.status_code == 413:
            raise BatchTooLarge()
        if response.status_code in (200, 207):
            results = response.json().get("results", [])
            return [r for r in results if r.get("status") == "rejected"]
        if response.status_code == 422:
            details = response.json().get("details")
            return details.get("results", []) if isinstance(details, dict) else [{"code": _code(response)}]
        raise Unreachable(f"the batch route answered {response.status_code}")

    def heartbeat(self) -> dict[str, Any]:
        response = self.request("POST", "/api/v1/devices/heartbeat")
        return response.json() if response.status_code == 200 else {}

    def ack(self, command_id: str, status: str, result: Any) -> None:
        response = self.request(
            "POST", f"/api/v1/devices/commands/{command_id}/ack", {"status": status, "result": result}
        )
        if response.status_code not in (200, 409):  # 409: already final (an ack repeated)
            logger.warning("ack of command %s answered %d", command_id, response.status_code)

    def report(self, state: dict[str, Any]) -> None:
        response = self.request("PUT", "/api/v1/devices/config", state)
        if response.status_code != 200:
            logger.warning("reported state answered %d %s", response.status_code, _code(response))
