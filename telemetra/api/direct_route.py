"""DirectRoute: a FastAPI route whose endpoint takes the Request and returns a Response itself.

FastAPI documents it like any other route (summary, body, responses, security scheme), but runs nothing of
its own on a request: no dependency solving, no body parsing, no answer serialization. That machinery costs
more than the rest of a small ingest request together; the busiest routes do the same work by calling the
functions the dependencies of the other routes call.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from fastapi.security.base import SecurityBase
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["DirectRoute"]


class DirectRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[[Request], Coroutine[Any, Any, Response]], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        for dependency in self.dependencies:
            # They document the operation's security; the endpoint itself authenticates. Anything else would
            # look as if it ran, and it would not.
            if not isinstance(dependency.dependency, SecurityBase):
                raise TypeError(
                    f"{path}: a DirectRoute takes security schemes only as dependencies, not {dependency.dependency!r}"
                )
        self.app = _serve(endpoint)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self.endpoint


def _serve(endpoint: Callable[[Request], Coroutine[Any, Any, Response]]) -> ASGIApp:
    """The endpoint as an ASGI app. What it raises goes up to the app's ExceptionMiddleware, which renders it
    with the handlers every route's errors get (Starlette's wrapper would look the same handlers up once more
    per request, and FastAPI's adds exit stacks for dependencies with yield, which this route has none of)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = await endpoint(Request(scope, receive, send))
        await response(scope, receive, send)

    return app
