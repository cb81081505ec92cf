"""A real server against clients that hold connections: headers sent slowly, and more connections than
it may hold (slowloris). Without the header deadline uvicorn keeps such connections for ever."""

from __future__ import annotations

import socket

import httpx

from tests.servers import Server

PARTIAL_HEADERS = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


def _open(port: int, first_bytes: bytes = PARTIAL_HEADERS) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(first_bytes)
    return sock


def _closed_by_server(sock: socket.socket, within_s: float) -> bool:
    """True when the server ends the connection within ``within_s`` (EOF or reset), False if it holds it."""
    sock.settimeout(within_s)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_headers_sent_too_slowly_end_the_connection_and_the_server_keeps_serving(sqlite_url: str) -> None:
    server = Server(sqlite_url, env={"TELEMETRA_HTTP_HEADER_TIMEOUT_S": "1"})
    slow = [_open(server.port) for _ in range(50)]
    try:
        # A kept-alive connection that answered one request and then dawdles over the next one's headers.
        kept = _open(server.port, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        slow.append(kept)
        assert kept.recv(4096).startswith(b"HTTP/1.1 200")
        kept.sendall(PARTIAL_HEADERS)
        assert httpx.get(server.url + "/health", timeout=5).status_code == 200  # serving meanwhile
        # Well past the 1 s deadline; uvicorn alone would hold them all for ever.
        assert all(_closed_by_server(sock, within_s=10) for sock in slow)
        assert _closed_by_server(kept, within_s=10)
        assert httpx.get(server.url + "/health", timeout=5).status_code == 200
    finally:
        for sock in slow:
            sock.close()
        server.stop()


def test_connections_past_the_cap_are_closed_at_once(sqlite_url: str) -> None:
    server = Server(sqlite_url, env={"TELEMETRA_HTTP_HEADER_TIMEOUT_S": "60", "TELEMETRA_HTTP_MAX_CONNECTIONS": "10"})
    held: list[socket.socket] = []
    try:
        held = [_open(server.port) for _ in range(15)]
        closed = [_closed_by_server(sock, within_s=2) for sock in held]
        # The first ten are held (their deadline is a minute away); the five past the cap are refused.
        assert closed.count(True) == 5 and closed[:10] == [False] * 10
        for sock in held:
            sock.close()
        # Freed connections are counted out again: a new client is served.
        assert httpx.get(server.url + "/health", timeout=5).status_code == 200
        assert "maximum of open connections" in _stop_and_read_log(server)
    finally:
        for sock in held:
            sock.close()
        server.stop()


def _stop_and_read_log(server: Server) -> str:
    server.stop()
    return server.stderr
