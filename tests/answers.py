"""Every answer the test suite receives from Telemetra is checked against the OpenAPI document: its status must
be documented for its route, and a JSON body must validate against the schema documented for that status.

One hook: ``check_answer`` runs after every request an httpx client of the tests sends, the ASGI test client
(``http://testserver``) and the servers started by ``tests/servers.py`` (registered there) alike; answers of
anything else (webhook receivers, brokers' HTTP) are not ours and are left alone. ``install`` wraps httpx's
``send`` for the session (conftest), so clients built inside a test, and the module functions (``httpx.get``),
are covered too. A contradiction fails the test at the call (and at its end, were the call's error swallowed).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import jsonschema_rs
import orjson
import pytest

__all__ = ["AnswerChecker", "install", "serving", "contradictions"]

ASGI_ORIGIN = "http://testserver"
_servers: set[str] = set()  # origins of `telemetra serve` processes started by tests/servers.py
_lock = threading.Lock()
contradictions: list[str] = []  # every one seen; conftest fails the test that received it


def serving(origin: str, running: bool) -> None:
    """Register (or forget, once stopped) the origin of a server whose answers are checked."""
    with _lock:
        (_servers.add if running else _servers.discard)(origin.rstrip("/"))


class AnswerChecker:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self._components = document.get("components", {})
        routes = []
        for template, operations in document["paths"].items():
            pattern = re.compile("^" + re.sub(r"\\\{[^}/]+\\\}", "[^/]+", re.escape(template)) + "/?$")
            for method, operation in operations.items():
                routes.append((template.count("{"), template, method.upper(), pattern, operation))
        # Fixed paths before templated ones, as the app routes them (/devices/status before /devices/{id}).
        self._routes = sorted(routes, key=lambda r: (r[0], r[1]))
        self._validators: dict[tuple[str, str, str], jsonschema_rs.Validator] = {}

    def route(self, method: str, path: str) -> tuple[str | None, dict[str, Any] | None]:
        """(template, operation) of the documented route answering ``method path``; (template, None) when only
        another method is documented there; (None, None) for a path the document does not hold."""
        path_only = None
        for _, template, route_method, pattern, operation in self._routes:
            if pattern.match(path):
                if route_method == method:
                    return template, operation
                path_only = path_only or template
        return path_only, None

    def problem(self, method: str, path: str, status: int, content_type: str, body: bytes) -> str | None:
        """What contradicts the document in this answer, or None."""
        template, operation = self.route(method, path)
        if template is None:
            return None  # not a documented route (/metrics, /docs, an unknown path's 404)
        if operation is None:
            # Another method of a documented path: the server answers 405 (or 404), our error body.
            return None if status in (404, 405) else f"{method} {template} is not documented, yet answered {status}"
        responses = operation["responses"]
        key = next((k for k in (str(status), f"{status // 100}XX", "default") if k in responses), None)
        if key is None:
            return f"{method} {template} answered {status}, which its documentation does not list: {body[:300]!r}"
        is_json = content_type.split(";")[0].strip().lower()
        is_json = is_json == "application/json" or is_json.endswith("+json")
        if not is_json or not body:
            return None
        content = responses[key].get("content")
        if not content:
            return f"{method} {template} {status} is documented without a body, yet answered JSON: {body[:300]!r}"
        media = content.get("application/json")
        if media is None:
            return f"{method} {template} {status} documents {sorted(content)}, yet answered JSON"
        schema = media.get("schema")
        if not schema:
            return None
        try:
            instance = orjson.loads(body)
        except orjson.JSONDecodeError:
            return f"{method} {template} {status} answered a body that is not JSON: {body[:300]!r}"
        validator = self._validator(template, method, key, schema)
        errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in validator.iter_errors(instance)]
        if errors:
            shown = "; ".join(errors[:5])
            return f"{method} {template} {status} contradicts its documented schema: {shown} -- in {body[:500]!r}"
        return None

    def _validator(self, template: str, method: str, key: str, schema: dict[str, Any]) -> jsonschema_rs.Validator:
        cache_key = (template, method, key)
        validator = self._validators.get(cache_key)
        if validator is None:
            # The schema with the document's components beside it, so that its $refs resolve.
            validator = jsonschema_rs.Draft202012Validator({**schema, "components": self._components})
            self._validators[cache_key] = validator
        return validator


def _ours(request: httpx.Request) -> bool:
    origin = f"{request.url.scheme}://{request.url.netloc.decode('ascii')}"
    return origin == ASGI_ORIGIN or origin in _servers


def _is_stream(response: httpx.Response) -> bool:
    return response.headers.get("content-type", "").startswith("text/event-stream")


def _check(checker: AnswerChecker, request: httpx.Request, response: httpx.Response, body: bytes) -> None:
    path = request.url.raw_path.split(b"?")[0].decode("ascii")
    found = checker.problem(request.method, path, response.status_code, response.headers.get("content-type", ""), body)
    if found is not None:
        contradictions.append(found)
        raise AssertionError(f"the answer contradicts the OpenAPI document: {found}")


@contextmanager
def install(checker: AnswerChecker) -> Iterator[None]:
    """Run ``check_answer`` on every answer httpx receives from Telemetra while this is entered."""
    sync_send, async_send = httpx.Client.send, httpx.AsyncClient.send

    def checked_send(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        response = sync_send(self, request, **kwargs)
        if _ours(request):  # a stream (SSE) is never read here: its status alone is checked
            _check(checker, request, response, b"" if _is_stream(response) else response.read())
        return response

    async def checked_async_send(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        response = await async_send(self, request, **kwargs)
        if _ours(request):  # a stream (SSE) is never read here: its status alone is checked
            _check(checker, request, response, b"" if _is_stream(response) else await response.aread())
        return response

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(httpx.Client, "send", checked_send)
        patch.setattr(httpx.AsyncClient, "send", checked_async_send)
        yield
