"""Where notifications may go: public addresses only, unless the operator allows a private range or host.

A tenant chooses its webhook URLs and mail servers, so without a check Telemetra would call whatever they
name from inside the deployment's network: 127.0.0.1, the cloud's metadata service at 169.254.169.254,
the database. ``OutboundPolicy`` decides after DNS resolution, on every address a name resolves to, and
the connection then goes to the address that was checked, never to a second lookup of the name (a DNS
server that answers a public address to the check and a private one to the connection gains nothing):

- webhooks: ``http_client()`` returns an httpx client whose connections are opened by ``_GuardedBackend``,
  which resolves, checks and connects to the checked address itself; TLS still verifies the certificate
  against the URL's host name, and the ``Host`` header is the URL's. The client follows no redirect, and
  it ignores proxy variables (a proxy would hide the destination from the check).
- mail: ``create_connection`` does the same for smtplib, and limits ports to the usual SMTP ones.

No library on PyPI does this for both httpx and smtplib: the httpx ones are young, GET-only or resolve
through a public DNS server of their own; hence this module, on the standard library's ``ipaddress``.

Refused unless allowed: every address that ``ipaddress`` does not call global, and also multicast,
reserved, unspecified, site-local, the shared (CGNAT) range 100.64.0.0/10, and an IPv6 address that
carries an IPv4 one (IPv4-mapped, 6to4, NAT64) when that IPv4 address would be refused.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import ssl
import typing
from collections.abc import Iterable
from dataclasses import dataclass

import httpcore
import httpx

__all__ = ["AddressRefused", "OutboundPolicy", "SMTP_PORTS", "parse_allow"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Submission (587), SMTPS (465), relay (25) and the common alternative 2525. Any other port is allowed only
# to a host the operator allowed: a mail channel must not become a way to talk to arbitrary services.
SMTP_PORTS = frozenset({25, 465, 587, 2525})
# A channel is checked when it is created, as a courtesy; a resolver that hangs must not hold the request.
# The check at send time is the one that counts.
CREATE_RESOLVE_TIMEOUT_S = 2.0
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_ALLOW_HINT = "the operator can allow it with TELEMETRA_OUTBOUND_ALLOW"


class AddressRefused(ValueError):
    """A host or port that notifications may not reach under the operator's policy."""


def parse_allow(text: str) -> tuple[tuple[IPNetwork, ...], frozenset[str]]:
    """Return the ranges and host names of a comma-separated allow list; raise ValueError naming a bad entry."""
    networks: list[IPNetwork] = []
    names: set[str] = set()
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
            continue
        except ValueError:
            pass
        name = _normal_name(entry)
        if not name or not all(
            label and len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii()
            for label in name.split(".")
        ):
            raise ValueError(f"{entry!r} is neither a CIDR range (10.0.0.0/8, ::1/128) nor a host name")
        names.add(name)
    return tuple(networks), frozenset(names)


@dataclass(frozen=True)
class OutboundPolicy:
    """Which destinations notifications may reach, and where e-mail channels' CA files may be read from.

    The default allows public addresses only and no CA file.
    """

    allowed_networks: tuple[IPNetwork, ...] = ()
    allowed_hosts: frozenset[str] = frozenset()
    ca_dir: str | None = None

    @classmethod
    def from_text(cls, allow: str = "", ca_dir: str | None = None) -> OutboundPolicy:
        """Build a policy from the settings' text forms (TELEMETRA_OUTBOUND_ALLOW, TELEMETRA_OUTBOUND_CA_DIR)."""
        networks, names = parse_allow(allow)
        return cls(networks, names, ca_dir)

    # -- addresses -------------------------------------------------------------------------------------
    def host_allowed(self, host: str) -> bool:
        """Return whether the operator allowed ``host`` by name (any address it resolves to may be used)."""
        return _normal_name(host) in self.allowed_hosts

    def address_allowed(self, address: IPAddress) -> bool:
        """Return whether ``address`` is public, or in a range the operator allowed."""
        return self._in_allowed_range(address) or _is_public(address)

    def _in_allowed_range(self, address: IPAddress) -> bool:
        candidates = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)  # ::ffff:127.0.0.1 is allowed when 127.0.0.1 is
        return any(ip.version == net.version and ip in net for ip in candidates for net in self.allowed_networks)

    def check(
        self, host: str, port: int, addresses: Iterable[IPAddress], *, usual_ports: frozenset[int] | None = None
    ) -> None:
        """Raise AddressRefused unless every address ``host`` resolved to may be reached on ``port``.

        With ``usual_ports``, another port is refused unless the host is allowed by name or every address
        is in an allowed range.
        """
        addresses = list(addresses)
        by_name = self.host_allowed(host)
        if not by_name and not all(self.address_allowed(a) for a in addresses):
            # One private address among public ones refuses the whole name: it is how a rebinding name looks.
            raise AddressRefused(f"{_shown(host)} is not a public address; {_ALLOW_HINT}")
        # No address known (a name that does not resolve yet): only a host allowed by name may use another port.
        in_ranges = bool(addresses) and all(self._in_allowed_range(a) for a in addresses)
        if usual_ports is not None and port not in usual_ports and not by_name and not in_ranges:
            ports = ", ".join(str(p) for p in sorted(usual_ports))
            raise AddressRefused(f"port {port} is not one of {ports}; {_ALLOW_HINT}")

    async def resolve(self, host: str, port: int, *, usual_ports: frozenset[int] | None = None) -> list[IPAddress]:
        """Resolve ``host`` and return its addresses if every one may be reached; raise AddressRefused if not,
        OSError if the name does not resolve."""
        addresses = _literal(host)
        if addresses is None:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            addresses = _addresses(infos)
        self.check(host, port, addresses, usual_ports=usual_ports)
        return addresses

    async def precheck(self, host: str, port: int, *, usual_ports: frozenset[int] | None = None) -> None:
        """Refuse, when a channel is created, a host that is (or now resolves to) an address it may not reach.

        A name that does not resolve yet, or not quickly, passes: DNS may change, and the check at send time
        is the one that counts.
        """
        try:
            await asyncio.wait_for(self.resolve(host, port, usual_ports=usual_ports), CREATE_RESOLVE_TIMEOUT_S)
        except (OSError, TimeoutError, UnicodeError):
            self.check(host, port, [], usual_ports=usual_ports)  # the port rule needs no address

    def create_connection(
        self, host: str, port: int, timeout: float | None, *, usual_ports: frozenset[int] | None = None
    ) -> socket.socket:
        """Resolve, check and connect to a checked address, blocking (for smtplib, in a worker thread)."""
        addresses = _literal(host)
        if addresses is None:
            addresses = _addresses(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        self.check(host, port, addresses, usual_ports=usual_ports)
        error: OSError | None = None
        for address in addresses:
            try:
                return socket.create_connection((str(address), port), timeout)
            except OSError as exc:
                error = exc
        raise error or OSError(f"{host} has no address")

    def http_client(self, *, verify: ssl.SSLContext | bool = True) -> httpx.AsyncClient:
        """Return an httpx client that connects only where this policy allows, and follows no redirect."""
        return httpx.AsyncClient(transport=_GuardedTransport(self, verify), follow_redirects=False, trust_env=False)

    # -- CA files --------------------------------------------------------------------------------------
    def ca_path(self, ca_file: str) -> str:
        """Return the real path of ``ca_file`` (relative to the CA directory, or absolute inside it).

        Raise ValueError, with the same words whether or not the file exists, when there is no CA directory
        or the path leads out of it (``..``, a symbolic link pointing elsewhere, an absolute path).
        """
        refusal = (
            "ca_file must name a file in the CA directory that the operator configured (TELEMETRA_OUTBOUND_CA_DIR)"
        )
        if not self.ca_dir:
            raise ValueError(refusal + "; none is configured, so the system's CAs are used")
        root = os.path.realpath(self.ca_dir)
        path = os.path.realpath(os.path.join(root, ca_file))
        if path == root or os.path.commonpath([root, path]) != root:
            raise ValueError(refusal)
        return path


# -- httpx -----------------------------------------------------------------------------------------------
class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Opens each connection to an address that the policy checked, after resolving the host itself."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self._policy.resolve(host, port)
        except OSError as exc:  # gaierror: reported as a connection failure, as a refused connection is
            raise httpcore.ConnectError(str(exc)) from exc
        error: Exception | None = None
        for address in addresses:
            try:
                # An address literal: the inner backend connects to it without another DNS lookup. TLS is
                # started later by httpcore with the URL's host as server name, so certificates are verified
                # against the name, not the address.
                return await self._inner.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None  # resolve never returns an empty list: getaddrinfo raises instead
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: typing.Iterable[typing.Any] | None = None
    ) -> typing.NoReturn:
        raise httpcore.ConnectError("unix sockets are not an outbound destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, with its connection pool built on ``_GuardedBackend``.

    httpx 0.28 takes no network backend, but its transport only ever uses ``self._pool``: we build the same
    pool (httpx's default limits) around ours. A test sends to 127.0.0.1 through it and expects a refusal,
    so an httpx that stopped using ``_pool`` would fail the tests, not open the door.
    """

    def __init__(self, policy: OutboundPolicy, verify: ssl.SSLContext | bool) -> None:
        # trust_env: SSL_CERT_FILE and SSL_CERT_DIR still choose the CAs; proxies are the client's, and it has none.
        context = httpx.create_ssl_context(verify=verify, trust_env=True)
        super().__init__(verify=context, trust_env=False)
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(policy),
        )


# -- addresses -------------------------------------------------------------------------------------------
def _is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return _is_public(embedded)  # the IPv4 address is where the packets end up
        if address.teredo is not None or address.is_site_local:
            return False
    elif address in _CGNAT:
        return False
    # is_global alone lets multicast (224.0.0.0/4, ff00::/8) through.
    return address.is_global and not (
        address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or address.is_loopback
        or address.is_link_local
        or address.is_private
    )


def _literal(host: str) -> list[IPAddress] | None:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        return None  # a name (or a form such as 2130706433 that only the resolver reads as an address)


def _addresses(infos: Iterable[tuple[typing.Any, ...]]) -> list[IPAddress]:
    found: list[IPAddress] = []
    for info in infos:
        # The scope of an IPv6 link-local address (fe80::1%eth0) is dropped; such an address is refused anyway.
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def _normal_name(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _shown(host: str) -> str:
    # The host comes from the tenant's own configuration; it is shown back shortened and on one line.
    host = "".join(ch for ch in host if ch.isprintable())
    return host if len(host) <= 100 else host[:99] + "…"
