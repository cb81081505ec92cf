"""E-mail delivery through SMTP, with the standard library's smtplib run in a worker thread.

Every redelivery of one notification carries the same ``Message-ID: <{idempotency key}@telemetra>``:
RFC 5322 section 3.6.4 makes a Message-ID name one message, so mail stores and list servers that
already hold it treat the copy as a duplicate.

Where mail may go is ``OutboundPolicy``'s decision: the server's name is resolved and checked when the
connection is opened, and the connection goes to the checked address (TLS still verifies the name); ports
other than 25, 465, 587 and 2525 need the operator's leave; ``ca_file`` is read only from the operator's
CA directory. An outcome keeps SMTP reply codes, never the server's own words.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import smtplib
import socket
import ssl
import string
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any, Literal, get_args

from telemetra.notify.outbound import SMTP_PORTS, AddressRefused, OutboundPolicy
from telemetra.notify.result import DeliveryResult, redact_error
from telemetra.notify.validation import check_keys, check_text, check_timeout

logger = logging.getLogger(__name__)
__all__ = [
    "EmailConfig",
    "Security",
    "build_message",
    "message_id",
    "send_email",
    "IDEMPOTENCY_HEADER",
    "DEFAULT_TIMEOUT_S",
]

Security = Literal["starttls", "tls", "none"]
SECURITY_MODES: tuple[str, ...] = get_args(Security)
DEFAULT_TIMEOUT_S = 10.0
IDEMPOTENCY_HEADER = "X-Telemetra-Idempotency-Key"
MESSAGE_ID_DOMAIN = "telemetra"
MAX_RECIPIENTS = 50
MAX_KEY_CHARS = 200
# QUIT after the mail is accepted is a courtesy; it gets a short wait of its own, past the send's timeout.
QUIT_TIMEOUT_S = 1.0
# Kept in a Message-ID as they are; every other character, '%' included, is percent-encoded, so two
# different keys never share a Message-ID (and one could never silence another's mail).
_MESSAGE_ID_SAFE = frozenset(string.ascii_letters + string.digits + "-_+=")
_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_WHITESPACE = re.compile(r"\s+")
# RFC 3463 enhanced status code at the start of a reply ("5.1.1 No such user"): kept, the words are not.
_ENHANCED_CODE = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")


@dataclass(frozen=True)
class EmailConfig:
    """An SMTP server and who sends to whom; built by ``from_json`` from a channel's stored config.

    ``security`` is "starttls" (plain connection upgraded, usually port 587), "tls" (TLS from the first
    byte, usually 465) or "none". ``ca_file`` names a PEM file of CAs to trust instead of the system's, in
    the operator's CA directory (``OutboundPolicy.ca_path``).
    """

    host: str
    port: int
    security: Security
    sender: str
    recipients: tuple[str, ...]
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_s: float = DEFAULT_TIMEOUT_S
    ca_file: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.recipients, list):
            object.__setattr__(self, "recipients", tuple(self.recipients))
        self.validate()

    def validate(self) -> None:
        """Raise ValueError, saying what to fix, unless this configuration can be used."""
        check_text(self.host, "host", max_chars=253)
        if any(ch.isspace() for ch in self.host):
            raise ValueError("host must be a host name or an IP address")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise ValueError("port must be a whole number from 1 to 65535, usually 587, 465 or 25")
        if self.security not in SECURITY_MODES:
            raise ValueError(f"security must be one of {', '.join(SECURITY_MODES)}")
        _check_address(self.sender, "sender")
        if not isinstance(self.recipients, tuple) or not self.recipients:
            raise ValueError("recipients must be a non-empty list of addresses")
        if len(self.recipients) > MAX_RECIPIENTS:
            raise ValueError(f"recipients holds at most {MAX_RECIPIENTS} addresses; use a mailing list for more")
        for recipient in self.recipients:
            _check_address(recipient, "each recipient")
        if self.username is not None:
            check_text(self.username, "username", max_chars=255)
            if not isinstance(self.password, str) or not self.password:
                raise ValueError("password is required with a username")
            if self.security == "none":
                raise ValueError("a password is never sent unencrypted; set security to starttls or tls")
        elif self.password is not None:
            raise ValueError("password needs a username")
        check_timeout(self.timeout_s)
        if self.ca_file is not None:
            check_text(self.ca_file, "ca_file", max_chars=4096)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EmailConfig:
        """Build and validate a configuration from its JSON form; raise ValueError if it is unusable."""
        data = check_keys(
            data,
            "email",
            required=("host", "port", "security", "sender", "recipients"),
            optional=("username", "password", "timeout_s", "ca_file"),
        )
        recipients = data["recipients"]
        if isinstance(recipients, str) or not isinstance(recipients, (list, tuple)):
            raise ValueError("recipients must be a list of addresses")
        timeout_s = data.get("timeout_s")
        return cls(
            host=data["host"],
            port=data["port"],
            security=data["security"],
            sender=data["sender"],
            recipients=tuple(recipients),
            username=data.get("username") or None,
            password=data.get("password") or None,
            timeout_s=DEFAULT_TIMEOUT_S if timeout_s is None else check_timeout(timeout_s),
            ca_file=data.get("ca_file"),
        )


def message_id(idempotency_key: str) -> str:
    """Return the Message-ID that every delivery of the notification ``idempotency_key`` carries."""
    if not idempotency_key or len(idempotency_key) > MAX_KEY_CHARS:
        raise ValueError(f"the idempotency key must be 1 to {MAX_KEY_CHARS} characters")
    last = len(idempotency_key) - 1
    left = []
    for i, ch in enumerate(idempotency_key):
        # RFC 5322 dot-atom-text: a dot may not start or end the id, nor follow another dot.
        lone_dot = ch == "." and 0 < i < last and "." not in (idempotency_key[i - 1], idempotency_key[i + 1])
        if ch in _MESSAGE_ID_SAFE or lone_dot:
            left.append(ch)
        else:
            left.extend(f"%{byte:02X}" for byte in ch.encode("utf-8", "surrogatepass"))
    return f"<{''.join(left)}@{MESSAGE_ID_DOMAIN}>"


def build_message(
    config: EmailConfig, subject: str, text: str, *, idempotency_key: str, html: str | None = None
) -> EmailMessage:
    """Return the mail for one notification: ``text``, with ``html`` as an alternative when given."""
    message = EmailMessage()
    message["Message-ID"] = message_id(idempotency_key)
    message["Date"] = format_datetime(datetime.now(timezone.utc))
    message["From"] = config.sender
    message["To"] = ", ".join(config.recipients)
    # A subject is built from rule and device names; a line break in one would end the header early.
    message["Subject"] = _WHITESPACE.sub(" ", subject).strip() or "(no subject)"
    message[IDEMPOTENCY_HEADER] = check_text(idempotency_key, "the idempotency key", max_chars=MAX_KEY_CHARS)
    # RFC 3834: marks the mail as machine-sent, so vacation responders do not answer it.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


async def send_email(
    config: EmailConfig,
    subject: str,
    text: str,
    *,
    idempotency_key: str,
    html: str | None = None,
    outbound: OutboundPolicy | None = None,
) -> DeliveryResult:
    """Send one notification by SMTP; return the outcome, never raising for a network or server failure.

    ``outbound`` decides which servers, ports and CA files may be used (default: public servers on the
    usual ports, no CA file). The exchange ends within ``config.timeout_s`` (plus at most QUIT_TIMEOUT_S to
    say goodbye). A mail that some recipients refused but others took counts as delivered, with the
    refusals in ``error``.
    """
    started = time.perf_counter()

    def outcome(ok: bool, error: str | None, *, retryable: bool, status_code: int | None) -> DeliveryResult:
        return DeliveryResult(
            ok=ok,
            status_code=status_code,
            error=None if error is None else redact_error(error, config.password),
            duration_ms=(time.perf_counter() - started) * 1000,
            retryable=retryable,
        )

    try:
        message = build_message(config, subject, text, idempotency_key=idempotency_key, html=html)
    except ValueError as exc:
        return outcome(False, str(exc), retryable=False, status_code=None)
    try:
        # smtplib blocks on every reply; in a thread it cannot stall the event loop. _deliver bounds
        # its own duration, so no thread outlives the result.
        refused = await asyncio.to_thread(_deliver, config, message, outbound or OutboundPolicy())
    except _Unusable as exc:
        return outcome(False, str(exc), retryable=False, status_code=None)
    except AddressRefused as exc:
        return outcome(False, f"address refused: {exc}", retryable=False, status_code=None)
    except OSError as exc:  # smtplib's errors, socket errors and ssl errors are all OSErrors
        error, retryable, code = _classify(exc, config)
        result = outcome(False, error, retryable=retryable, status_code=code)
        logger.debug("mail %s via %s:%d failed: %s", idempotency_key, config.host, config.port, result.error)
        return result
    logger.debug("mail %s accepted by %s:%d", idempotency_key, config.host, config.port)
    note = None
    if refused:
        note = "delivered, but the server refused " + "; ".join(
            f"{rcpt} ({_reply(code, reply)})" for rcpt, (code, reply) in refused.items()
        )
    return outcome(True, note, retryable=False, status_code=250)


class _Unusable(Exception):
    """The configuration cannot work as it stands (its CA file does not load); retrying will not help."""


class _GuardedSMTP(smtplib.SMTP):
    """smtplib's client, connecting through the policy: resolve, check, connect to the checked address."""

    def __init__(self, host: str, port: int, *, outbound: OutboundPolicy, **kwargs: Any) -> None:
        self._outbound = outbound
        super().__init__(host, port, **kwargs)  # connects, through _get_socket

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # smtplib opens its socket here (with socket.create_connection). STARTTLS later verifies the
        # certificate against the host name, not the address.
        return self._outbound.create_connection(host, port, timeout, usual_ports=SMTP_PORTS)


class _GuardedSMTPSSL(smtplib.SMTP_SSL):
    """As ``_GuardedSMTP``, with TLS from the first byte, verified against the host name."""

    def __init__(self, host: str, port: int, *, outbound: OutboundPolicy, **kwargs: Any) -> None:
        self._outbound = outbound
        self._server_name = host  # what smtplib keeps as its (untyped, private) `_host`
        super().__init__(host, port, **kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = self._outbound.create_connection(host, port, timeout, usual_ports=SMTP_PORTS)
        return self.context.wrap_socket(sock, server_hostname=self._server_name)


def _socket(smtp: smtplib.SMTP) -> socket.socket:
    # Read anew each time: STARTTLS replaces the socket with its TLS wrapper.
    assert smtp.sock is not None  # the constructor connected (it was given a host)
    return smtp.sock


def _deliver(config: EmailConfig, message: EmailMessage, outbound: OutboundPolicy) -> dict[str, tuple[int, bytes]]:
    deadline = time.monotonic() + config.timeout_s

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        return left

    context = _tls_context(config, outbound) if config.security != "none" else None
    if config.security == "tls":
        smtp: smtplib.SMTP = _GuardedSMTPSSL(
            config.host,
            config.port,
            outbound=outbound,
            local_hostname=_ehlo_name(),
            timeout=remaining(),
            context=context,
        )
    else:
        smtp = _GuardedSMTP(
            config.host, config.port, outbound=outbound, local_hostname=_ehlo_name(), timeout=remaining()
        )
    try:
        if config.security == "starttls":
            _socket(smtp).settimeout(remaining())
            # Raises SMTPNotSupportedError when the server offers no STARTTLS: never fall back to plain.
            smtp.starttls(context=context)
        if config.username is not None:
            _socket(smtp).settimeout(remaining())
            smtp.login(config.username, config.password or "")
        _socket(smtp).settimeout(remaining())
        return smtp.send_message(
            message, from_addr=parseaddr(config.sender)[1], to_addrs=[parseaddr(r)[1] for r in config.recipients]
        )
    finally:
        _quit(smtp)


def _quit(smtp: smtplib.SMTP) -> None:
    # Not `with smtp`: its exit raises when QUIT gets an odd reply, which would turn a mail already
    # accepted into a failure, and a retry into a duplicate.
    if smtp.sock is None:
        return
    try:
        smtp.sock.settimeout(QUIT_TIMEOUT_S)
        smtp.quit()
    except OSError:
        smtp.close()


def _tls_context(config: EmailConfig, outbound: OutboundPolicy) -> ssl.SSLContext:
    try:
        ca_file = None if config.ca_file is None else outbound.ca_path(config.ca_file)
    except ValueError as exc:
        raise _Unusable(str(exc)) from exc
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        # Not the OS's words: "no such file" against "not PEM" would tell what the directory holds.
        raise _Unusable(
            "the CA file in ca_file cannot be loaded; it must be a PEM file of CA certificates in the CA directory"
        ) from exc


@functools.cache
def _ehlo_name() -> str:
    # smtplib would look up our fully qualified name (a DNS query) on every connection.
    return socket.getfqdn()


def _classify(exc: OSError, config: EmailConfig) -> tuple[str, bool, int | None]:
    """Return the error text, whether a retry may succeed, and the SMTP reply code if there was one."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        details = "; ".join(f"{rcpt} ({_reply(code, reply)})" for rcpt, (code, reply) in exc.recipients.items())
        # A 4xx (mailbox full, greylisting) may pass; when every refusal is 5xx none will.
        return (
            f"the server refused every recipient: {details}",
            any(400 <= c < 500 for c in codes),
            codes[0] if codes else None,
        )
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        error = (
            f"the server refused the user name or password ({_reply(exc.smtp_code, exc.smtp_error)}); "
            "check the channel's credentials"
        )
        return error, 400 <= exc.smtp_code < 500, exc.smtp_code
    if isinstance(exc, smtplib.SMTPResponseException):
        what = f"refused the sender {exc.sender}" if isinstance(exc, smtplib.SMTPSenderRefused) else "answered"
        return (
            f"the server {what}: {_reply(exc.smtp_code, exc.smtp_error)}",
            400 <= exc.smtp_code < 500,
            exc.smtp_code,
        )
    # smtplib reports a reply that never came as a disconnection, the socket's timeout as its context.
    if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
        return f"no answer within {config.timeout_s:g} s", True, None
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return "the server closed the connection", True, None
    if isinstance(exc, smtplib.SMTPException):
        # SMTPNotSupportedError (no STARTTLS, no AUTH) and "no suitable authentication method": the server
        # and the channel disagree, and will go on disagreeing.
        return f"the server cannot be used as configured: {exc}", False, None
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the server's TLS certificate was refused: {exc.verify_message or exc}", False, None
    # No errno, no resolver message: the tenant reads this, and which of refused, reset or unreachable it
    # was would map the network behind the server.
    return f"could not talk to {config.host}:{config.port}", True, None


def _check_address(value: Any, name: str) -> None:
    check_text(value, name, max_chars=320)
    # One address per field: parseaddr reads only the first of "a@x, b@y" and would drop the rest.
    _, address = parseaddr(value)
    if "," in value or ";" in value or not _ADDRESS.fullmatch(address):
        raise ValueError(
            f"{name} must be one e-mail address such as alerts@example.com or 'Telemetra <alerts@example.com>'"
        )


def _reply(code: int, reply: bytes | str) -> str:
    """Return an SMTP reply as its codes only: the server's words are its own, and not ours to show."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    enhanced = _ENHANCED_CODE.match(text.strip())
    return f"{code} {enhanced.group()}" if enhanced else str(code)
