"""send_webhook against a real HTTP receiver on 127.0.0.1 that checks each signature and records each request.

The client allows 127.0.0.1 as an operator would with TELEMETRA_OUTBOUND_ALLOW; the refusals of private
addresses are in test_outbound.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import orjson
import pytest

from telemetra import __version__
from telemetra.notify import DeliveryResult, WebhookConfig, send_webhook
from telemetra.notify.outbound import OutboundPolicy
from tests.brokers import free_port
from tests.certs import CertificateFiles
from tests.receivers import WebhookReceiver

SECRET = "whsec-7Hq2-never-in-errors"
BODY = orjson.dumps({"event": "alert.triggered", "alert": {"id": 7, "rule": "hot", "device_id": "pump-1"}})
KEY = "alert-7-alert.triggered-channel-3"
LOCAL = OutboundPolicy.from_text("127.0.0.1/32")


@pytest.fixture
def receiver() -> Iterator[Callable[..., WebhookReceiver]]:
    """Start receivers with the given settings; every one is stopped after the test."""
    started: list[WebhookReceiver] = []

    def _start(**settings) -> WebhookReceiver:
        started.append(WebhookReceiver(SECRET, **settings).start())
        return started[-1]

    yield _start
    for one in started:
        one.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with LOCAL.http_client() as client:
        yield client


async def deliver(client: httpx.AsyncClient, url: str, *, timeout_s: float = 2.0, key: str = KEY) -> DeliveryResult:
    config = WebhookConfig(url=url, secret=SECRET, timeout_s=timeout_s)
    return await send_webhook(client, config, BODY, idempotency_key=key, event="alert.triggered")


def assert_retryable_failure(result: DeliveryResult, retryable: bool) -> None:
    assert not result.ok
    assert result.retryable is retryable
    assert result.error and SECRET not in result.error


async def test_delivers_the_signed_body_with_its_headers(client, receiver) -> None:
    hook = receiver(status=204)
    result = await deliver(client, hook.url)
    assert result == DeliveryResult(
        ok=True, status_code=204, error=None, duration_ms=result.duration_ms, retryable=False
    )
    assert result.duration_ms > 0
    [request] = hook.requests
    assert request.signature_ok  # checked by the receiver with verify(); a bad one would have got a 401
    assert request.path == "/hook"
    assert request.body == BODY
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"] == KEY
    assert request.headers["X-Telemetra-Event"] == "alert.triggered"
    assert request.headers["User-Agent"] == f"telemetra/{__version__}"


async def test_a_receiver_with_another_secret_refuses_the_signature(client, receiver) -> None:
    hook = receiver()
    hook.secret = "not-the-channel-secret"
    result = await deliver(client, hook.url)
    assert_retryable_failure(result, False)
    assert result.status_code == 401
    assert not hook.requests[0].signature_ok


@pytest.mark.parametrize(
    "status, retryable",
    [
        (500, True),
        (502, True),
        (503, True),
        (429, True),
        (408, True),
        (425, True),
        (404, False),
        (400, False),
        (410, False),
        (422, False),
    ],
)
async def test_status_decides_whether_to_retry(client, receiver, status, retryable) -> None:
    hook = receiver(status=status, reply_body=b"receiver says no")
    result = await deliver(client, hook.url)
    assert_retryable_failure(result, retryable)
    assert result.status_code == status
    assert result.error.startswith(f"HTTP {status} ")  # with the standard phrase, and nothing of the body
    assert "receiver says no" not in result.error


async def test_retry_after_is_reported(client, receiver) -> None:
    hook = receiver(status=429, reply_headers={"Retry-After": "7"})
    result = await deliver(client, hook.url)
    assert_retryable_failure(result, True)
    assert result.retry_after_s == 7.0


async def test_a_receiver_that_is_down_is_retried_later(client) -> None:
    result = await deliver(client, f"http://127.0.0.1:{free_port()}/hook")
    assert_retryable_failure(result, True)
    assert result.status_code is None
    assert result.error == "could not connect"  # no errno: which failure it was would map a network


async def test_a_slow_receiver_times_out(client, receiver) -> None:
    hook = receiver(delay_s=10.0)
    result = await deliver(client, hook.url, timeout_s=0.2)
    assert_retryable_failure(result, True)
    assert result.error == "no answer within 0.2 s"
    assert 150 < result.duration_ms < 2000
    assert len(hook.requests) == 1


async def test_a_redirect_is_not_followed_even_by_a_following_client(receiver) -> None:
    hook = receiver(status=307, reply_headers={"Location": "/elsewhere"})
    async with httpx.AsyncClient(follow_redirects=True) as following:
        result = await deliver(following, hook.url)
    assert_retryable_failure(result, False)
    assert result.status_code == 307
    assert result.error.startswith("HTTP 307: redirects are not followed")
    assert "elsewhere" not in result.error  # the receiver's Location is its words, not ours to show
    assert [r.path for r in hook.requests] == ["/hook"]


async def test_the_secret_never_reaches_the_error_text(client, receiver) -> None:
    # A receiver's debug page that echoes configuration back must not copy the secret into our records.
    hook = receiver(status=500, reply_body=f"Traceback: hmac key {SECRET!r} rejected".encode())
    result = await deliver(client, hook.url)
    assert_retryable_failure(result, True)
    assert result.error == "HTTP 500 Internal Server Error"
    assert SECRET not in repr(WebhookConfig(url=hook.url, secret=SECRET))


async def test_a_large_error_answer_is_cut_short(client, receiver) -> None:
    hook = receiver(status=500, reply_body=b"x" * 300_000)
    result = await deliver(client, hook.url)
    assert_retryable_failure(result, True)
    assert len(result.error) <= 300


async def test_an_outage_is_retried_with_the_same_idempotency_key(client, receiver) -> None:
    hook = receiver()
    hook.stop()  # the receiver goes down
    first = await deliver(client, hook.url)
    assert_retryable_failure(first, True)

    hook.start()  # and comes back on the same port
    second = await deliver(client, hook.url)
    assert second.ok and second.status_code == 204
    [request] = hook.requests
    assert request.headers["Idempotency-Key"] == KEY
    assert request.signature_ok and request.body == BODY


async def test_https_with_a_trusted_ca(receiver, certificates: CertificateFiles) -> None:
    hook = receiver(tls=certificates.server_context())
    async with LOCAL.http_client(verify=certificates.client_context()) as trusting:
        result = await deliver(trusting, hook.url)
    assert result.ok and hook.requests[0].signature_ok


async def test_https_with_an_untrusted_certificate_is_not_retried(
    client, receiver, certificates: CertificateFiles
) -> None:
    hook = receiver(tls=certificates.server_context())
    result = await deliver(client, hook.url)
    assert_retryable_failure(result, False)
    assert "certificate" in result.error
    assert hook.requests == []


@pytest.mark.parametrize("key", ["", "line\r\nX-Injected: 1", "clé", "k" * 201])
async def test_an_unusable_idempotency_key_is_refused_before_sending(client, receiver, key) -> None:
    hook = receiver()
    result = await deliver(client, hook.url, key=key)
    assert_retryable_failure(result, False)
    assert hook.requests == []


def test_config_from_json() -> None:
    config = WebhookConfig.from_json({"url": "https://example.com/hooks/telemetra", "secret": SECRET, "timeout_s": 3})
    assert config == WebhookConfig("https://example.com/hooks/telemetra", SECRET, 3.0)
    assert WebhookConfig.from_json({"url": "http://[::1]:8080/x", "secret": SECRET}).timeout_s == 5.0


@pytest.mark.parametrize(
    "data, message",
    [
        ({"url": "ftp://example.com/x", "secret": SECRET}, "http:// or https://"),
        ({"url": "example.com/hook", "secret": SECRET}, "http:// or https://"),
        ({"url": "https://", "secret": SECRET}, "http:// or https://"),
        ({"url": "http://exa mple.com/", "secret": SECRET}, "http:// or https://"),
        ({"url": "http://example.com:99999/", "secret": SECRET}, "http:// or https://"),
        ({"url": "https://user:pw@example.com/", "secret": SECRET}, "user name or password"),
        ({"url": "https://example.com/", "secret": ""}, "secret"),
        ({"url": "https://example.com/", "secret": "   "}, "secret"),
        ({"url": "https://example.com/"}, "needs secret"),
        ({"secret": SECRET}, "needs url"),
        ({"url": "https://example.com/", "secret": SECRET, "timeout": 3}, "unknown webhook setting timeout"),
        ({"url": "https://example.com/", "secret": SECRET, "timeout_s": 0}, "timeout_s"),
        ({"url": "https://example.com/", "secret": SECRET, "timeout_s": 61}, "timeout_s"),
        ({"url": "https://example.com/", "secret": SECRET, "timeout_s": True}, "timeout_s"),
        ({"url": "https://example.com/", "secret": SECRET, "timeout_s": "5"}, "timeout_s"),
        ({"url": 5, "secret": SECRET}, "url"),
        (["https://example.com/"], "JSON object"),
    ],
)
def test_config_refuses(data, message) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        WebhookConfig.from_json(data)
    assert SECRET not in str(raised.value)
