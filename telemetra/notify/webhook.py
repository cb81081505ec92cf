"""Webhook delivery: each notification is one signed JSON POST to the channel's URL.

A request carries ``X-Telemetra-Signature`` (see ``signing``), ``Idempotency-Key`` (the same on every
redelivery of one notification, so a receiver can drop repeats) and ``X-Telemetra-Event``. Any 2xx
answer counts as delivered.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any

import httpx

from telemetra import __version__
from telemetra.notify.outbound import AddressRefused
from telemetra.notify.result import DeliveryResult, redact_error
from telemetra.notify.signing import SIGNATURE_HEADER, sign
from telemetra.notify.validation import check_keys, check_text, check_timeout

logger = logging.getLogger(__name__)
__all__ = [
    "WebhookConfig",
    "send_webhook",
    "is_retryable_status",
    "USER_AGENT",
    "IDEMPOTENCY_HEADER",
    "EVENT_HEADER",
    "DEFAULT_TIMEOUT_S",
]

USER_AGENT = f"telemetra/{__version__}"
IDEMPOTENCY_HEADER = "Idempotency-Key"
EVENT_HEADER = "X-Telemetra-Event"
DEFAULT_TIMEOUT_S = 5.0
MAX_URL_CHARS = 2048
MAX_HEADER_CHARS = 200
# 408 Request Timeout, 425 Too Early and 429 Too Many Requests ask the client to come back later; every
# other 4xx says the request itself is wrong and will stay wrong however often it is sent.
RETRYABLE_4XX = frozenset({408, 425, 429})
# A small answer is read to its end, so that the connection goes back to the pool; a larger one is cut off.
MAX_RESPONSE_BYTES = 64 * 1024
CONNECT_FAILED = "could not connect"
# Host names (after IDNA encoding) and IP addresses, IPv6 without its brackets; httpx lets a space or a
# percent sign through to fail only at connect time.
_HOST = re.compile(rb"[A-Za-z0-9._:-]+")


@dataclass(frozen=True)
class WebhookConfig:
    """Where and how to POST notifications; built by ``from_json`` from a channel's stored config."""

    url: str
    secret: str = field(repr=False)
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError, saying what to fix, unless this configuration can be used."""
        check_text(self.url, "url", max_chars=MAX_URL_CHARS)
        try:
            url = httpx.URL(self.url)
        except httpx.InvalidURL:
            url = None
        if (
            url is None
            or url.scheme not in ("http", "https")
            or not _HOST.fullmatch(url.raw_host)
            or not (url.port is None or 0 < url.port < 65536)
        ):
            raise ValueError(
                "url must be an http:// or https:// URL with a host, such as https://example.com/hooks/telemetra"
            )
        if url.userinfo:
            # The channel view masks the secret but shows the URL; receivers authenticate by signature.
            raise ValueError(
                "url must not hold a user name or password; verify the X-Telemetra-Signature header instead"
            )
        if not isinstance(self.secret, str) or not self.secret.strip():
            raise ValueError("secret must be a non-empty string; omit it to have one generated")
        check_timeout(self.timeout_s)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WebhookConfig:
        """Build and validate a configuration from its JSON form; raise ValueError if it is unusable."""
        data = check_keys(data, "webhook", required=("url", "secret"), optional=("timeout_s",))
        timeout_s = data.get("timeout_s")
        return cls(
            url=data["url"],
            secret=data["secret"],
            timeout_s=DEFAULT_TIMEOUT_S if timeout_s is None else check_timeout(timeout_s),
        )


def is_retryable_status(status_code: int) -> bool:
    """Return whether an HTTP answer with this status may succeed if the same request is sent later."""
    return status_code >= 500 or status_code in RETRYABLE_4XX


async def send_webhook(
    client: httpx.AsyncClient, config: WebhookConfig, body: bytes, *, idempotency_key: str, event: str
) -> DeliveryResult:
    """POST ``body`` (JSON) to the webhook, signed; return the outcome, never raising for a network failure.

    ``client`` comes from ``OutboundPolicy.http_client()``, which connects only to addresses the policy
    allows (a refusal is reported as ``address refused: ...``, not retried). Redirects are never followed,
    whatever the client's setting: re-sending a signed notification to wherever a 3xx points would hand it
    to a host the tenant never configured, and one the check never saw. The outcome keeps the status and a
    short reason of ours, never the receiver's answer. The whole exchange, connecting included, ends within
    ``config.timeout_s``.
    """
    started = time.perf_counter()

    def outcome(
        ok: bool,
        error: str | None,
        *,
        retryable: bool,
        status_code: int | None = None,
        retry_after_s: float | None = None,
    ) -> DeliveryResult:
        return DeliveryResult(
            ok=ok,
            status_code=status_code,
            error=None if error is None else redact_error(error, config.secret),
            duration_ms=(time.perf_counter() - started) * 1000,
            retryable=retryable,
            retry_after_s=retry_after_s,
        )

    try:
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(config.secret, body),
            IDEMPOTENCY_HEADER: _header_value(idempotency_key, "idempotency key"),
            EVENT_HEADER: _header_value(event, "event"),
            "User-Agent": USER_AGENT,
        }
    except ValueError as exc:
        return outcome(False, str(exc), retryable=False)

    response: httpx.Response | None = None
    try:
        # httpx's timeout bounds each phase (connect, write, each read); this bounds their sum, so a
        # receiver that trickles its answer cannot hold a delivery past the dispatcher's lease.
        async with asyncio.timeout(config.timeout_s):
            async with client.stream(
                "POST", config.url, content=body, headers=headers, timeout=config.timeout_s, follow_redirects=False
            ) as response:
                await _drain(response)
    except AddressRefused as exc:
        return outcome(False, f"address refused: {exc}", retryable=False)
    except httpx.ConnectTimeout:
        # As a refused connection: which of the two it was tells an outsider whether a port is filtered.
        return outcome(False, CONNECT_FAILED, retryable=True)
    except (TimeoutError, httpx.TimeoutException):
        if response is None:
            return outcome(False, f"no answer within {config.timeout_s:g} s", retryable=True)
        # The status line arrived in time and decides; only the body was cut short.
    except (httpx.InvalidURL, httpx.UnsupportedProtocol):
        return outcome(False, "the URL cannot be used", retryable=False)
    except httpx.TransportError as exc:
        refusal = _certificate_refusal(exc)
        if refusal is not None:
            return outcome(False, f"the receiver's TLS certificate was refused: {refusal}", retryable=False)
        # No errno, no text from the other end: the delivery log is shown to the tenant, and the details of a
        # failed connection (refused, reset, unreachable) would make it a network scanner.
        failed = CONNECT_FAILED if isinstance(exc, httpx.ConnectError) else "the connection failed"
        return outcome(False, failed, retryable=True)

    code = response.status_code
    logger.debug("webhook %s answered %d in %.0f ms", idempotency_key, code, (time.perf_counter() - started) * 1000)
    if 200 <= code < 300:
        return outcome(True, None, retryable=False, status_code=code)
    if 300 <= code < 400:
        return outcome(
            False,
            f"HTTP {code}: redirects are not followed; set the channel's URL to the endpoint itself",
            retryable=False,
            status_code=code,
        )
    # The status and our own name for it, never the receiver's words: its body (or reason phrase) may be an
    # internal service's answer, and the delivery log would hand it to the tenant.
    return outcome(
        False,
        _status_text(code),
        retryable=is_retryable_status(code),
        status_code=code,
        retry_after_s=_retry_after_s(response.headers.get("Retry-After")),
    )


def _header_value(value: str, name: str) -> str:
    # Header injection guard: the key and event come from the outbox, but a CR or LF must never reach
    # the wire, and httpx refuses non-ASCII header values with an exception of its own.
    if not value or len(value) > MAX_HEADER_CHARS or not all(" " <= ch <= "~" for ch in value):
        raise ValueError(f"the {name} must be 1 to {MAX_HEADER_CHARS} printable ASCII characters")
    return value


async def _drain(response: httpx.Response) -> None:
    # Reading a small answer to its end lets the connection go back to the pool; its content is not kept.
    received = 0
    try:
        async for chunk in response.aiter_bytes():
            received += len(chunk)
            if received >= MAX_RESPONSE_BYTES:
                break
    except httpx.HTTPError:
        pass  # the status line already decided the outcome


def _status_text(code: int) -> str:
    try:
        return f"HTTP {code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"HTTP {code}"


def _certificate_refusal(exc: BaseException) -> str | None:
    # httpx wraps the ssl error; a certificate that does not verify stays refused until someone acts. The
    # verifier's own short reason (expired, self-signed, name mismatch) is ours, not the receiver's text.
    seen: BaseException | None = exc
    for _ in range(10):  # a chain can loop; ours are two or three deep
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen.verify_message or "it does not verify"
        seen = seen.__cause__ or seen.__context__
    return None


def _retry_after_s(value: str | None) -> float | None:
    # RFC 9110 section 10.2.3: either delay-seconds or an HTTP-date.
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
