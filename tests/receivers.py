"""Real receivers for notifications, run by the tests: a webhook endpoint that checks signatures, an SMTP server."""

from __future__ import annotations

import email
import email.policy
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, LoginPassword, Session

from telemetra.notify import verify
from telemetra.notify.signing import SIGNATURE_HEADER
from tests.brokers import free_port


@dataclass
class Request:
    path: str
    headers: email.message.Message
    body: bytes
    signature_ok: bool


@dataclass
class WebhookReceiver:
    """A webhook endpoint in a thread: it answers 401 to a bad signature, 503 to the first ``fail_first``
    requests, else ``status`` after ``delay_s``."""

    secret: str
    port: int = field(default_factory=free_port)
    status: int = 204
    reply_headers: dict[str, str] = field(default_factory=dict)
    reply_body: bytes = b""
    delay_s: float = 0.0
    fail_first: int = 0  # the first requests answered 503 (a receiver briefly down), before ``status``
    tls: ssl.SSLContext | None = None
    requests: list[Request] = field(default_factory=list)
    _released: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/hook"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                signature_ok = verify(receiver.secret, body, self.headers.get(SIGNATURE_HEADER, ""))
                receiver.requests.append(Request(self.path, self.headers, body, signature_ok))
                # Wait on an event, not a sleep: stop() releases a slow answer at once, unanswered.
                if receiver.delay_s and receiver._released.wait(receiver.delay_s):
                    return
                failing = len(receiver.requests) <= receiver.fail_first
                self.send_response(401 if not signature_ok else 503 if failing else receiver.status)
                for name, value in receiver.reply_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(receiver.reply_body)))
                self.end_headers()
                self.wfile.write(receiver.reply_body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._released.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)  # sets SO_REUSEADDR
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"webhook-receiver-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = None


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    over_tls: bool
    login: bytes | None


@dataclass
class RecordingHandler:
    """Takes every mail and keeps it; refuses the recipients in ``refuse`` with the reply given."""

    refuse: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(
        self, server, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session: Session, envelope: Envelope) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        # session.ssl covers STARTTLS only; the transport knows about TLS from the first byte too.
        over_tls = session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message, over_tls, login))
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    handler: RecordingHandler
    port: int


def smtp_servers() -> Iterator[Callable[..., SmtpServer]]:
    """Start aiosmtpd servers (in their own threads) with the given SMTP options; stop them at the end."""
    controllers: list[Controller] = []

    def _start(**options) -> SmtpServer:
        handler = RecordingHandler()
        # server_hostname spares aiosmtpd a DNS lookup of our own name.
        controller = Controller(handler, hostname="127.0.0.1", port=free_port(), server_hostname="mx.test", **options)
        controller.start()
        controllers.append(controller)
        return SmtpServer(handler, controller.port)

    yield _start
    for controller in controllers:
        controller.stop()
