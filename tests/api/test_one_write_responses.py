"""A response's head and body leave in one write (one system call, one TCP segment), in order; a head with
no body right behind it (a stream's) leaves at the event loop's next step."""

from __future__ import annotations

import asyncio
import json
import socket

from telemetra.api.http_protocol import _OneWriteResponses
from tests.servers import Server


class _Recording(asyncio.Transport):
    """A transport that keeps what is written, one entry per write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default=None):
        return {"peername": ("127.0.0.1", 1234)}.get(name, default)


HEAD = b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n"


async def test_a_head_and_its_body_are_one_write() -> None:
    raw = _Recording()
    one = _OneWriteResponses(raw, asyncio.get_running_loop())
    one.write(HEAD)
    assert raw.writes == []
    one.write(b"{}")
    assert raw.writes == [HEAD + b"{}"]
    one.write(b"more")  # a later chunk of a body goes as it comes
    assert raw.writes[-1] == b"more"
    assert one.get_extra_info("peername") == ("127.0.0.1", 1234)  # the rest is the transport's


async def test_a_head_alone_leaves_at_the_next_step_and_before_a_close() -> None:
    raw = _Recording()
    one = _OneWriteResponses(raw, asyncio.get_running_loop())
    one.write(HEAD)
    await asyncio.sleep(0)
    assert raw.writes == [HEAD]
    one.write(HEAD)
    one.close()
    assert raw.writes == [HEAD, HEAD] and raw.closed


def test_a_server_answers_whole_responses_on_a_kept_alive_connection(sqlite_url: str) -> None:
    """End to end through uvicorn and the held heads: on one kept-alive connection each answer arrives
    whole, its head then its body, before the next request is sent. (That they leave in one write is what
    the tests above check: over loopback a client cannot tell one segment from two.)"""
    server = Server(sqlite_url)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            for _ in range(5):
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                first = sock.recv(65536)
                head, _, body = first.partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200 OK")
                length = int(
                    next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")).split(
                        b":"
                    )[1]
                )
                assert len(body) == length and json.loads(body)["status"] == "healthy"
    finally:
        server.stop()
