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
    parsed = urlparse(url)
    return urlunparse(parsed._replace(scheme="tls")) if parsed.scheme == "nats" else url


def _speaks_tls(connection: nats.NATS) -> bool:
    # nats-py (2.16) turns to TLS only when the server's INFO says tls_required, whatever the URL's scheme and
    # the context given: a server (or a man in the middle) offering plain text is otherwise accepted. Its
    # INFO is not public; should that attribute go, this reads False and TLS connections fail loudly.
    return bool(getattr(connection, "_server_info", {}).get("tls_required"))


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

    connection: nats.NATS | None = None

    async def on_reconnect() -> None:
        if tls and connection is not None and not _speaks_tls(connection):
            logger.error("nats %s: reconnected without TLS; closing the connection", url_without_credentials(url))
            await connection.close()

    options = {"tls": tls.context()} if tls else {}
    connecting = asyncio.ensure_future(
        nats.connect(
            servers=[_tls_url(url) if tls else url],
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            connect_timeout=5,
            error_cb=on_error,
            reconnected_cb=on_reconnect,
            **options,
        )
    )
    await asyncio.wait([connecting, refused], return_when=asyncio.FIRST_COMPLETED)
    if not connecting.done():
        connecting.cancel()
        await asyncio.gather(connecting, return_exceptions=True)
        raise BrokerUnverified(f"NATS at {url_without_credentials(url)} refused: {refused.result()}")
    refused.cancel()
    connection = connecting.result()
    if tls and not _speaks_tls(connection):
        await connection.close()
        raise BrokerUnverified(f"NATS at {url_without_credentials(url)} offers no TLS; TLS is required")
    return connection


class BrokerUnverified(ConnectionError):
    """The NATS server's certificate does not verify against the configured CA, or it offers no TLS."""


def url_without_credentials(url: str) -> str:
    """``url`` without the user and password it may carry: what may be logged."""
    parsed = urlparse(url)
    if not parsed.hostname:
        return url
    return urlunparse(parsed._replace(netloc=parsed.hostname + (f":{parsed.port}" if parsed.port else "")))
