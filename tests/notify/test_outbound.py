"""Where notifications may go: public addresses only unless allowed, checked after resolution when connecting.

Webhooks go to a real receiver on 127.0.0.1 and mail to a real SMTP server there; with the default policy
neither ever sees a request, whatever spelling of a private address the URL uses.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import time
from collections.abc import Callable, Iterator

import orjson
import pytest

from telemetra.errors import ConfigError
from telemetra.notify import EmailConfig, WebhookConfig, send_email, send_webhook
from telemetra.notify.outbound import SMTP_PORTS, AddressRefused, OutboundPolicy
from telemetra.settings import load_settings
from tests.receivers import SmtpServer, WebhookReceiver, smtp_servers

SECRET = "whsec-outbound-test"
BODY = orjson.dumps({"event": "alert.raised"})
STRICT = OutboundPolicy()


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(SECRET).start()
    yield receiver
    receiver.stop()


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., SmtpServer]]:
    yield from smtp_servers()


async def post(policy: OutboundPolicy, url: str):
    async with policy.http_client() as client:
        return await send_webhook(
            client,
            WebhookConfig(url=url, secret=SECRET, timeout_s=2.0),
            BODY,
            idempotency_key="k-1",
            event="alert.raised",
        )


def mail(host: str, port: int, **fields) -> EmailConfig:
    return EmailConfig(
        **{
            "host": host,
            "port": port,
            "security": "none",
            "sender": "alerts@example.com",
            "recipients": ("oncall@example.com",),
            "timeout_s": 2.0,
            **fields,
        }
    )


# Each spelling reaches the receiver on 127.0.0.1 (or another private address) unless refused.
LOOPBACK_FORMS = [
    "127.0.0.1",
    "0x7f000001",
    "2130706433",
    "127.1",
    "localhost",
    "0.0.0.0",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
]
PRIVATE_URLS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/",
    "http://192.168.1.1/",
    "http://172.16.0.1/",
    "http://100.64.0.1/",
    "http://[fe80::1]/",
    "http://[fd00::1]/",
    "http://224.0.0.1/",
    "http://[2002:7f00:1::]/",
    "http://[64:ff9b::7f00:1]/",
    "http://0/",
]


@pytest.mark.parametrize("host", LOOPBACK_FORMS)
async def test_every_spelling_of_loopback_is_refused_before_connecting(hook, host) -> None:
    result = await post(STRICT, f"http://{host}:{hook.port}/hook")
    assert not result.ok and not result.retryable and result.status_code is None
    assert result.error.startswith("address refused: ") and "TELEMETRA_OUTBOUND_ALLOW" in result.error
    assert hook.requests == []


@pytest.mark.parametrize("url", PRIVATE_URLS)
async def test_private_link_local_and_special_addresses_are_refused(url) -> None:
    started = time.perf_counter()
    result = await post(STRICT, url)
    assert result.error.startswith("address refused: ") and not result.retryable
    assert time.perf_counter() - started < 1.0  # refused, not tried until a timeout


async def test_a_host_allowed_by_name_is_reached_and_its_address_still_is_not(hook) -> None:
    by_name = OutboundPolicy.from_text("localhost")
    assert (await post(by_name, f"http://localhost:{hook.port}/hook")).ok
    refused = await post(by_name, f"http://127.0.0.1:{hook.port}/hook")
    assert refused.error.startswith("address refused: ")
    assert len(hook.requests) == 1


async def test_tls_verifies_the_name_while_connecting_to_the_checked_address(certificates) -> None:
    # The certificate names localhost and 127.0.0.1; the connection goes to the resolved address, and the
    # certificate must still match the URL's name.
    hook = WebhookReceiver(SECRET, tls=certificates.server_context()).start()
    try:
        by_name = OutboundPolicy.from_text("localhost")
        async with by_name.http_client(verify=certificates.client_context()) as client:
            result = await send_webhook(
                client,
                WebhookConfig(url=f"https://localhost:{hook.port}/hook", secret=SECRET),
                BODY,
                idempotency_key="k-1",
                event="alert.raised",
            )
        assert result.ok, result.error
        async with by_name.http_client() as untrusting:  # the system's CAs never signed the test certificate
            result = await send_webhook(
                untrusting,
                WebhookConfig(url=f"https://localhost:{hook.port}/hook", secret=SECRET),
                BODY,
                idempotency_key="k-1",
                event="alert.raised",
            )
        assert result.error.startswith("the receiver's TLS certificate was refused") and not result.retryable
    finally:
        hook.stop()
    assert len(hook.requests) == 1


async def test_an_allowed_range_admits_every_spelling_that_resolves_into_it(hook) -> None:
    loopback = OutboundPolicy.from_text("127.0.0.0/8")
    for host in ("127.0.0.1", "2130706433", "0x7f000001", "localhost"):
        result = await post(loopback, f"http://{host}:{hook.port}/hook")
        assert result.ok, (host, result.error)
    assert len(hook.requests) == 4


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1", "64:ff9b::808:808"]
)
def test_public_addresses_pass(address) -> None:
    assert STRICT.address_allowed(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.31.255.255",
        "192.168.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.251",
        "198.18.0.1",
        "192.0.2.1",
        "240.0.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fec0::1",
        "ff02::1",
        "::ffff:10.0.0.1",
        "2002:a00:1::",
        "2001::1",
        "64:ff9b::a00:1",
        "::7f00:1",
    ],
)
def test_non_public_addresses_are_refused(address) -> None:
    assert not STRICT.address_allowed(ipaddress.ip_address(address))


def test_one_private_address_among_public_ones_refuses_the_name() -> None:
    addresses = [ipaddress.ip_address("8.8.8.8"), ipaddress.ip_address("127.0.0.1")]
    with pytest.raises(AddressRefused, match="rebind.example is not a public address"):
        STRICT.check("rebind.example", 443, addresses)


def test_an_allowed_mapped_address_follows_its_ipv4_range() -> None:
    policy = OutboundPolicy.from_text("127.0.0.1/32")
    assert policy.address_allowed(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert not policy.address_allowed(ipaddress.ip_address("::ffff:127.0.0.2"))


def test_a_bad_allow_entry_stops_the_start_naming_the_setting(monkeypatch) -> None:
    monkeypatch.setenv("TELEMETRA_OUTBOUND_ALLOW", "127.0.0.1/32,10.0.0.0/33")
    with pytest.raises(ConfigError, match="TELEMETRA_OUTBOUND_ALLOW") as raised:
        load_settings(_env_file=None)
    assert "10.0.0.0/33" in raised.value.message


# -- mail ------------------------------------------------------------------------------------------------
async def test_mail_to_a_private_server_is_refused_and_never_sent(smtp_server) -> None:
    server = smtp_server()
    for host in ("127.0.0.1", "localhost"):
        result = await send_email(mail(host, server.port), "s", "t", idempotency_key="k-1", outbound=STRICT)
        assert not result.ok and not result.retryable
        assert result.error.startswith("address refused: ")
    assert server.handler.received == []


async def test_mail_to_an_allowed_server_is_sent_on_any_port(smtp_server) -> None:
    server = smtp_server()
    assert server.port not in SMTP_PORTS
    for policy in (OutboundPolicy.from_text("127.0.0.1/32"), OutboundPolicy.from_text("localhost")):
        result = await send_email(mail("localhost", server.port), "s", "t", idempotency_key="k-1", outbound=policy)
        assert result.ok, result.error
    assert len(server.handler.received) == 2


async def test_a_public_mail_server_is_limited_to_the_smtp_ports() -> None:
    # Refused before any connection: nothing is sent to 8.8.8.8.
    result = await send_email(mail("8.8.8.8", 6379), "s", "t", idempotency_key="k-1", outbound=STRICT)
    assert result.error == (
        "address refused: port 6379 is not one of 25, 465, 587, 2525; "
        "the operator can allow it with TELEMETRA_OUTBOUND_ALLOW"
    )
    assert not result.retryable
    STRICT.check("8.8.8.8", 587, [ipaddress.ip_address("8.8.8.8")], usual_ports=SMTP_PORTS)  # passes


# -- CA files --------------------------------------------------------------------------------------------
@pytest.fixture
def ca_dir(tmp_path, certificates) -> str:
    directory = tmp_path / "cas"
    directory.mkdir()
    shutil.copy(certificates.ca_file, directory / "ours.pem")
    (directory / "out").symlink_to("/etc")
    (directory / "hosts-link.pem").symlink_to("/etc/hosts")
    return str(directory)


def test_a_ca_file_is_read_only_from_the_ca_directory(ca_dir) -> None:
    policy = OutboundPolicy(ca_dir=ca_dir)
    inside = os.path.join(os.path.realpath(ca_dir), "ours.pem")
    assert policy.ca_path("ours.pem") == inside
    assert policy.ca_path(inside) == inside
    refusals = set()
    for path in (
        "/etc/passwd",
        "/etc/no-such-file",
        "../../etc/passwd",
        "../no-such-file",
        "out/passwd",
        "out/no-such-file",
        "hosts-link.pem",
        ".",
        ca_dir,
        "/",
    ):
        with pytest.raises(ValueError) as raised:
            policy.ca_path(path)
        refusals.add(str(raised.value))
    assert len(refusals) == 1  # the same words whether the file exists or not
    with pytest.raises(ValueError, match="none is configured"):
        OutboundPolicy().ca_path("ours.pem")


async def test_mail_with_a_ca_file_outside_the_directory_is_refused_unsent(smtp_server, ca_dir, certificates) -> None:
    server = smtp_server(ssl_context=certificates.server_context())
    policy = OutboundPolicy.from_text("127.0.0.1/32", ca_dir=ca_dir)
    outside = await send_email(
        mail("127.0.0.1", server.port, security="tls", ca_file=certificates.ca_file),
        "s",
        "t",
        idempotency_key="k-1",
        outbound=policy,
    )
    assert not outside.ok and not outside.retryable
    assert outside.error.startswith("ca_file must name a file in the CA directory")
    assert server.handler.received == []
    inside = await send_email(
        mail("127.0.0.1", server.port, security="tls", ca_file="ours.pem"),
        "s",
        "t",
        idempotency_key="k-1",
        outbound=policy,
    )
    assert inside.ok, inside.error
