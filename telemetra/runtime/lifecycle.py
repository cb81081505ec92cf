"""Runtime: the parts of one process, started in the order they are declared and stopped in the reverse order.

A part is entered with its start and its stop (as ``contextlib.AsyncExitStack`` enters a context): the stop
is registered only once the start returned, so a start that fails stops exactly what was started before it.
Parts that take messages in (the sources, the pipeline, the rule engine) are ``bounded``: their stops share one
deadline, ``TELEMETRA_INGEST_STOP_TIMEOUT_S`` from the start of ``stop``. What is not committed by then is left
unacknowledged, for the broker to send again, and the parts below still stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, Coroutine

from telemetra.runtime.services import Services
from telemetra.settings import Settings
from telemetra.store import Store

if TYPE_CHECKING:
    from telemetra.alerts.dispatcher import Dispatcher

logger = logging.getLogger(__name__)
__all__ = ["Runtime"]


@dataclass(frozen=True, slots=True)
class _Part:
    name: str
    stop: Callable[..., Awaitable[None]]
    bounded: bool  # stop(timeout_s) takes what is left of the shared deadline


class Runtime:
    """The store, the services and what runs them in one process (``serve``, ``worker``, a CLI command)."""

    def __init__(self, settings: Settings, store: Store, *, owns_store: bool) -> None:
        self.settings = settings
        self.store = store
        self.owns_store = owns_store  # opened and closed here; a store handed in is its giver's to close
        self._services: Services | None = None
        self.dispatcher: Dispatcher | None = None  # the outbox's sender, in `serve` only
        self._parts: list[_Part] = []

    @property
    def services(self) -> Services:
        if self._services is None:
            raise RuntimeError("the services are built once the store is open")
        return self._services

    @services.setter
    def services(self, services: Services) -> None:
        self._services = services

    async def enter(
        self,
        name: str,
        start: Callable[[], Any] | None = None,
        stop: Callable[..., Awaitable[None]] | None = None,
        *,
        bounded: bool = False,
    ) -> None:
        """Start a part now (``start`` may be a plain function or a coroutine function) and register its stop."""
        if start is not None:
            started = start()
            if inspect.isawaitable(started):
                await started
        if stop is not None:
            self._parts.append(_Part(name, stop, bounded))

    async def spawn(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` as a task of this runtime: cancelled and awaited when the runtime stops."""
        task = asyncio.get_running_loop().create_task(work, name=name)

        async def cancel() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        await self.enter(name, stop=cancel)

    async def stop(self) -> None:
        """Stop every started part, the last started first; the bounded ones within the shared deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.ingest_stop_timeout_s
        failure: BaseException | None = None
        while self._parts:
            part = self._parts.pop()
            try:
                if part.bounded:
                    await part.stop(max(0.0, deadline - loop.time()))
                else:
                    await part.stop()
            except Exception as exc:  # the parts below must still stop (the store's threads, the brokers)
                logger.exception("stopping %s failed", part.name)
                failure = failure or exc
        if failure is not None:
            raise failure

    @asynccontextmanager
    async def running(self, declare: Callable[[Runtime], Awaitable[None]]) -> AsyncIterator[Runtime]:
        """Start the parts ``declare`` enters, yield, then stop them; a part that cannot start (a broker's
        certificate refused) fails the start, and what was started is stopped, or the store's threads would keep
        the process alive."""
        try:
            await declare(self)
        except BaseException:
            await self.stop()
            raise
        try:
            yield self
        finally:
            await self.stop()
