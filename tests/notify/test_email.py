"""send_email against real SMTP servers (aiosmtpd on 127.0.0.1): plain, STARTTLS with login, implicit TLS.

127.0.0.1 (any port) and the test CA's directory are allowed as an operator would with
TELEMETRA_OUTBOUND_ALLOW and TELEMETRA_OUTBOUND_CA_DIR; the refusals are in test_outbound.py."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from telemetra.notify import DeliveryResult, EmailConfig, build_message, message_id
from telemetra.notify import send_email as send_any_email
from telemetra.notify.outbound import OutboundPolicy
from tests.brokers import free_port
from tests.certs import CertificateFiles
from tests.receivers import Received, SmtpServer, smtp_servers

SENDER = "Telemetra <alerts@example.com>"
RECIPIENTS = ("oncall@example.com", "lead@example.com")
USERNAME, PASSWORD = "alerts", "pw-Zx81-never-in-errors"
KEY = "alert-7-alert.triggered-channel-4"
SUBJECT = "[Telemetra] CRITICAL: hot on pump-1"
TEXT = "pump-1 is above 80 °C\n\nstatus: active\n"


@pytest.fixture(autouse=True)
def _outbound(certificates: CertificateFiles) -> Iterator[None]:
    global _LOCAL
    _LOCAL = OutboundPolicy.from_text("127.0.0.1/32", ca_dir=os.path.dirname(certificates.ca_file))
    yield
    _LOCAL = None


_LOCAL: OutboundPolicy | None = None


async def send_email(*args, **kwargs) -> DeliveryResult:
    return await send_any_email(*args, outbound=_LOCAL, **kwargs)


def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USERNAME.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., SmtpServer]]:
    yield from smtp_servers()


@pytest.fixture
def tls_server(smtp_server, certificates: CertificateFiles) -> SmtpServer:
    """A submission server: STARTTLS required, then a login required."""
    return smtp_server(
        tls_context=certificates.server_context(),
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=True,
    )


def config_for(port: int, **overrides) -> EmailConfig:
    settings = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "sender": SENDER,
        "recipients": RECIPIENTS,
        "timeout_s": 5.0,
        **overrides,
    }
    return EmailConfig(**settings)


def assert_failure(result: DeliveryResult, retryable: bool) -> None:
    assert not result.ok
    assert result.retryable is retryable
    assert result.error and PASSWORD not in result.error


def assert_is_the_notification(received: Received) -> None:
    assert received.mail_from == "alerts@example.com"
    assert received.rcpt_tos == list(RECIPIENTS)
    message = received.message
    assert message["From"] == SENDER
    assert message["To"] == ", ".join(RECIPIENTS)
    assert message["Subject"] == SUBJECT
    assert message["Message-ID"] == f"<{KEY}@telemetra>"
    assert message["X-Telemetra-Idempotency-Key"] == KEY
    assert message["Date"].datetime.tzinfo is not None
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n") == TEXT  # CRLF on the wire


async def test_plain_smtp_delivers_the_mail(smtp_server) -> None:
    server = smtp_server()
    result = await send_email(config_for(server.port), SUBJECT, TEXT, idempotency_key=KEY)
    assert result == DeliveryResult(
        ok=True, status_code=250, error=None, duration_ms=result.duration_ms, retryable=False
    )
    [received] = server.handler.received
    assert_is_the_notification(received)
    assert not received.over_tls and received.login is None


async def test_a_redelivery_carries_the_same_message_id(smtp_server) -> None:
    server = smtp_server()
    for _ in range(2):
        assert (await send_email(config_for(server.port), SUBJECT, TEXT, idempotency_key=KEY)).ok
    first, second = server.handler.received
    assert first.message["Message-ID"] == second.message["Message-ID"] == f"<{KEY}@telemetra>"


async def test_starttls_and_login_deliver_the_mail(tls_server, certificates) -> None:
    config = config_for(
        tls_server.port, security="starttls", username=USERNAME, password=PASSWORD, ca_file=certificates.ca_file
    )
    result = await send_email(config, SUBJECT, TEXT, idempotency_key=KEY, html="<p>pump-1 is above 80 °C</p>")
    assert result.ok, result.error
    [received] = tls_server.handler.received
    assert_is_the_notification(received)
    assert received.over_tls and received.login == USERNAME.encode()
    assert received.message.get_body(("html",)).get_content().rstrip() == "<p>pump-1 is above 80 °C</p>"


async def test_a_wrong_password_is_not_retried(tls_server, certificates) -> None:
    config = config_for(
        tls_server.port,
        security="starttls",
        username=USERNAME,
        password="wrong-" + PASSWORD,
        ca_file=certificates.ca_file,
    )
    result = await send_email(config, SUBJECT, TEXT, idempotency_key=KEY)
    assert_failure(result, False)
    assert result.status_code == 535
    assert "user name or password" in result.error and "wrong-" not in result.error
    assert tls_server.handler.received == []


async def test_a_certificate_from_an_unknown_ca_is_refused(tls_server) -> None:
    # No ca_file: the system's trust store, which has never heard of the test CA.
    config = config_for(tls_server.port, security="starttls", username=USERNAME, password=PASSWORD)
    result = await send_email(config, SUBJECT, TEXT, idempotency_key=KEY)
    assert_failure(result, False)
    assert "certificate" in result.error
    assert tls_server.handler.received == []


async def test_starttls_is_never_skipped_when_the_server_lacks_it(smtp_server, certificates) -> None:
    server = smtp_server()  # offers no STARTTLS
    config = config_for(server.port, security="starttls", ca_file=certificates.ca_file)
    result = await send_email(config, SUBJECT, TEXT, idempotency_key=KEY)
    assert_failure(result, False)
    assert "STARTTLS" in result.error
    assert server.handler.received == []


async def test_implicit_tls_delivers_the_mail(smtp_server, certificates) -> None:
    server = smtp_server(ssl_context=certificates.server_context())
    config = config_for(server.port, security="tls", ca_file=certificates.ca_file)
    result = await send_email(config, SUBJECT, TEXT, idempotency_key=KEY)
    assert result.ok, result.error
    [received] = server.handler.received
    assert_is_the_notification(received)
    assert received.over_tls


async def test_a_server_that_is_down_is_retried_later() -> None:
    port = free_port()
    result = await send_email(config_for(port), SUBJECT, TEXT, idempotency_key=KEY)
    assert_failure(result, True)
    assert result.status_code is None
    assert result.error == f"could not talk to 127.0.0.1:{port}"  # no errno: which failure it was would map a network


async def test_a_server_that_never_greets_times_out() -> None:
    with socket.socket() as silent:  # accepts connections in its backlog but never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        config = config_for(silent.getsockname()[1], timeout_s=0.3)
        result = await send_email(config, SUBJECT, TEXT, idempotency_key=KEY)
    assert_failure(result, True)
    assert result.error == "no answer within 0.3 s"
    assert 250 < result.duration_ms < 3000


@pytest.mark.parametrize("reply, retryable", [("550 5.1.1 No such user", False), ("450 4.2.1 Try later", True)])
async def test_refused_recipients(smtp_server, reply, retryable) -> None:
    server = smtp_server()
    server.handler.refuse = {address: reply for address in RECIPIENTS}
    result = await send_email(config_for(server.port), SUBJECT, TEXT, idempotency_key=KEY)
    assert_failure(result, retryable)
    assert result.status_code == int(reply[:3])
    assert "oncall@example.com" in result.error and reply[:9] in result.error  # codes, not the server's words
    assert reply[10:] not in result.error
    assert server.handler.received == []


async def test_a_mail_some_recipients_took_counts_as_delivered(smtp_server) -> None:
    server = smtp_server()
    server.handler.refuse = {"lead@example.com": "550 5.1.1 No such user"}
    result = await send_email(config_for(server.port), SUBJECT, TEXT, idempotency_key=KEY)
    assert result.ok
    assert result.error == "delivered, but the server refused lead@example.com (550 5.1.1)"
    [received] = server.handler.received
    assert received.rcpt_tos == ["oncall@example.com"]


async def test_an_unreadable_ca_file_is_not_retried(certificates) -> None:
    config = config_for(free_port(), security="tls", ca_file=certificates.ca_file + ".missing")
    result = await send_email(config, SUBJECT, TEXT, idempotency_key=KEY)
    assert_failure(result, False)
    assert result.error.startswith("the CA file in ca_file cannot be loaded")


def test_message_id_keeps_a_plain_key_and_encodes_the_rest() -> None:
    assert message_id("alert-12-alert.cleared-channel-3") == "<alert-12-alert.cleared-channel-3@telemetra>"
    assert message_id("a b<c>@d") == "<a%20b%3Cc%3E%40d@telemetra>"
    assert message_id(".a..b.") == "<%2Ea%2E%2Eb%2E@telemetra>"
    assert message_id("clé") == "<cl%C3%A9@telemetra>"
    # Encoding, not replacing: different keys never share a Message-ID.
    assert message_id("a b") != message_id("a_b") != message_id("a%20b")
    with pytest.raises(ValueError):
        message_id("")


def test_build_message_folds_a_subject_onto_one_line() -> None:
    config = config_for(25)
    message = build_message(config, "hot\r\nBcc: everyone@example.com", TEXT, idempotency_key="k 1")
    assert message["Subject"] == "hot Bcc: everyone@example.com"
    assert message["Bcc"] is None
    assert message["Message-ID"] == "<k%201@telemetra>"
    assert message["Auto-Submitted"] == "auto-generated"


def test_config_from_json() -> None:
    config = EmailConfig.from_json(
        {
            "host": "smtp.example.com",
            "port": 587,
            "security": "starttls",
            "username": USERNAME,
            "password": PASSWORD,
            "sender": SENDER,
            "recipients": ["oncall@example.com"],
        }
    )
    assert config.recipients == ("oncall@example.com",)
    assert config.timeout_s == 10.0 and config.ca_file is None
    assert PASSWORD not in repr(config)


VALID = {
    "host": "smtp.example.com",
    "port": 587,
    "security": "starttls",
    "sender": "alerts@example.com",
    "recipients": ["oncall@example.com"],
}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"host": ""}, "host"),
        ({"host": "smtp example.com"}, "host"),
        ({"port": 0}, "port"),
        ({"port": "587"}, "port"),
        ({"port": True}, "port"),
        ({"security": "ssl"}, "security must be one of starttls, tls, none"),
        ({"sender": "not an address"}, "sender"),
        ({"sender": "a@example.com, b@example.com"}, "sender"),
        ({"recipients": []}, "recipients"),
        ({"recipients": "oncall@example.com"}, "recipients must be a list"),
        ({"recipients": ["oncall@example.com", "nobody"]}, "each recipient"),
        ({"recipients": ["x@example.com\r\nBcc: y@example.com"]}, "each recipient"),
        ({"username": USERNAME}, "password is required"),
        ({"password": PASSWORD}, "password needs a username"),
        ({"security": "none", "username": USERNAME, "password": PASSWORD}, "never sent unencrypted"),
        ({"timeout_s": 600}, "timeout_s"),
        ({"tls": True}, "unknown email setting tls"),
    ],
)
def test_config_refuses(change, message) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        EmailConfig.from_json({**VALID, **change})
    assert PASSWORD not in str(raised.value)


def test_config_needs_its_fields() -> None:
    with pytest.raises(ValueError, match="needs host, port"):
        EmailConfig.from_json({"security": "tls", "sender": "a@example.com", "recipients": ["b@example.com"]})
