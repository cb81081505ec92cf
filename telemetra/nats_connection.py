"""How Telemetra connects to NATS (the JetStream source and the command transport): reconnecting for ever,
and over TLS when the settings ask for it."""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from urllib.parse import urlparse, urlunparse

import nats

logger = logging.getLogger(__name__)
__all__ = ["BrokerUnverified", "NatsTls", "connect_nats", "nats_tls_from", "url_without_credentials"]


@dataclass(frozen=True, slots=True)
class NatsTls:
    """``ca_file``: the server's certificate must chain to it (the system's CAs without one); ``cert_file``
    and ``key_file``: the client certificate presented to a server that asks for one."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def context(self) -> ssl.SSLContext:
        # Verifies the chain and the host name, as ssl's defaults do.
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


def nats_tls_from(url: str, ca_file: str | None, cert_file: str | None, key_file: str | None) -> NatsTls | None:
    """TLS settings for ``url``: wanted with a ``tls://`` URL or any certificate file, else None."""
    if urlparse(url).scheme == "tls" or ca_file or cert_file:
        return NatsTls(ca_file, cert_file, key_file)
    return None


def _tls_url(url: str) -> str:
    # nats-py upgrades a nats:// connection only when the server asks for TLS: a tls:// URL makes the
    # client insist, so that a server (or a man in the middle) offering plain text is refused.
    parsed = urlparse(url)
    return urlunparse(parsed._replace(scheme="tls")) if parsed.scheme == "nats" else url


async def connect_nats(url: str, tls: NatsTls | None) -> nats.NATS:
    """Connect to ``url`` (credentials may be in it: ``nats://user:password@host:4222``).

    A server that is down is tried again every second, for ever, at the start as later. A server whose
    certificate cannot be verified is refused at once, with the reason: that will not change by retrying
    (and nats-py, after such a failure, waits for ever without trying again)."""
    refused = asyncio.get_running_loop().create_future()

    async def on_error(exc: Exception) -> None:
        if isinstance(exc, ssl.SSLCertVerificationError) and not refused.done():
            refused.set_result(exc)
        logger.warning("nats %s: %s", url_without_credentials(url), exc)

    options = {"tls": tls.context()} if tls else {}
    connecting = asyncio.ensure_future(nats.connect(
        servers=[_tls_url(url) if tls else url], max_reconnect_attempts=-1, reconnect_time_wait=1,
        connect_timeout=5, error_cb=on_error, **options))
    await asyncio.wait([connecting, refused], return_when=asyncio.FIRST_COMPLETED)
    if connecting.done():
        refused.cancel()
        return connecting.result()
    connecting.cancel()
    await asyncio.gather(connecting, return_exceptions=True)
    raise BrokerUnverified(f"NATS at {url_without_credentials(url)} refused: {refused.result()}")


class BrokerUnverified(ConnectionError):
    """The NATS server's certificate does not verify against the configured CA."""


def url_without_credentials(url: str) -> str:
    """``url`` without the user and password it may carry: what may be logged."""
    parsed = urlparse(url)
    if not parsed.hostname:
        return url
    return urlunparse(parsed._replace(netloc=parsed.hostname + (f":{parsed.port}" if parsed.port else "")))
