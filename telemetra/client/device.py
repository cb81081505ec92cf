"""The device client's loop: read at a period, keep in the outbox, send oldest first, take commands and desired
state, acknowledge. The user's functions all run in one thread, never concurrently (MQTT's network thread only
queues what arrives); a second thread only sends the outbox."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Protocol

from telemetra.client.buffer import Outbox
from telemetra.client.config import DeviceConfig, load_function
from telemetra.client.http_link import AuthenticationFailed, BatchTooLarge, HttpLink, Unreachable

logger = logging.getLogger("telemetra.client")
__all__ = ["DeviceClient", "AuthenticationFailed"]

# MQTT commands wait in a queue; the loop looks at it this often between readings.
INBOUND_POLL_S = 0.2
# The sender looks at the outbox at least this often (a reading also wakes it).
SEND_IDLE_S = 1.0
Reader = Callable[[], dict[str, Any]]
CommandHandler = Callable[[str, dict[str, Any]], Any]
DesiredHandler = Callable[[dict[str, Any]], dict[str, Any] | None]


class Link(Protocol):
    def send_batch(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]: ...
    def ack(self, command_id: str, status: str, result: Any) -> None: ...
    def report(self, state: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


class DeviceClient:
    def __init__(
        self,
        config: DeviceConfig,
        *,
        reader: Reader | None = None,
        on_command: CommandHandler | None = None,
        on_desired: DesiredHandler | None = None,
        base_dir: Path | None = None,
    ) -> None:
        self.config = config
        self.reader: Reader = reader or load_function(config.reader, base_dir)
        self.on_command = on_command or (
            load_function(config.command_handler, base_dir) if config.command_handler else None
        )
        self.on_desired = on_desired or (
            load_function(config.desired_handler, base_dir) if config.desired_handler else None
        )
        buffer_path = Path(config.buffer_file) if base_dir is None else base_dir / config.buffer_file
        self.outbox = Outbox(buffer_path, config.buffer_max)
        self.http = HttpLink(config) if config.url else None
        self.link: Link
        if config.transport == "mqtt":
            from telemetra.client.mqtt_link import MqttLink

            self.mqtt: Any = MqttLink(config)
            self.link = self.mqtt
        else:
            assert self.http is not None  # DeviceConfig requires url for HTTP
            self.mqtt, self.link = None, self.http
        self.sent = 0
        self.rejected = 0
        self.buffered = self.dropped = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._fatal: AuthenticationFailed | None = None
        self._state = "starting"
        self._failures = 0
        self._retry_at = 0.0
        self._batch = config.batch_max
        self._desired_version: int | None = None

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Until ``stop()``: AuthenticationFailed when the credentials are refused (retrying cannot help).

        This thread reads at the period and runs the handlers; a second one sends the outbox, so that what
        accumulates while a request is in flight (or the platform is away) goes in the next batch."""
        sender = threading.Thread(target=self._send_loop, name="telemetra-sender", daemon=True)
        now = time.monotonic()
        next_read, next_beat = now, now
        try:
            if self.http is not None and self.config.password:
                try:
                    self.http.login()  # a wrong password stops the client at once, not after an outage
                except Unreachable as exc:
                    self._note("unreachable", str(exc))
            sender.start()
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_read:
                    self.read_once()
                    self._wake.set()
                    next_read = max(next_read + self.config.period_s, now)
                if self.mqtt is not None:
                    self._take_inbound()
                    wake = min(next_read, now + INBOUND_POLL_S)
                else:
                    if self.http is not None and now >= next_beat:
                        self.poll_heartbeat()
                        next_beat = now + self.config.heartbeat_s
                    wake = min(next_read, next_beat)
                self._stop.wait(max(0.0, wake - time.monotonic()))
        finally:
            self._stop.set()
            self._wake.set()
            if sender.is_alive():
                sender.join(self.config.timeout_s + 1)
            self.close()
        if self._fatal is not None:
            raise self._fatal

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(max(0.05, min(SEND_IDLE_S, self._retry_at - time.monotonic())))
            self._wake.clear()
            if self._stop.is_set() or time.monotonic() < self._retry_at:
                continue
            try:
                self.flush()
            except AuthenticationFailed as exc:
                self._fatal = exc
                self._stop.set()

    def close(self) -> None:
        self.buffered, self.dropped = len(self.outbox), self.outbox.overflow  # kept for the last word
        self.link.close()
        if self.http is not None and self.http is not self.link:
            self.http.close()
        self.outbox.close()

    # -- readings ---------------------------------------------------------------------------------
    def read_once(self) -> None:
        try:
            values = self.reader()
        except Exception:
            logger.exception("the reader failed; trying again at the next period")
            return
        if values:
            stamp = datetime.now(timezone.utc).isoformat()
            self.outbox.put({"data": values, "timestamp": stamp, "msg_id": uuid.uuid4().hex})

    def flush(self) -> None:
        """Send the outbox, oldest first, in batches, until it is empty or the platform does not answer."""
        while len(self.outbox):
            batch = self.outbox.oldest(self._batch)
            try:
                refused = self.link.send_batch([message for _, message in batch])
            except BatchTooLarge:
                self._batch = max(1, self._batch // 2)
                continue
            except Unreachable as exc:
                self._failed(str(exc))
                return
            self.outbox.remove_through(batch[-1][0])
            self.sent += len(batch) - len(refused)
            if refused:
                self.rejected += len(refused)
                logger.warning("%d readings refused for good (first: %s)", len(refused), refused[0].get("message"))
            self._note("ok", f"{len(batch)} sent")
            self._failures = 0

    def _failed(self, detail: str) -> None:
        self._failures += 1
        delay = min(self.config.max_backoff_s, 2 ** (self._failures - 1) * 0.5)
        self._retry_at = time.monotonic() + delay
        self._note("unreachable", detail)

    def _note(self, state: str, detail: str) -> None:
        """Log when the link's state changes (not at every retry of an outage)."""
        if state == self._state:
            return
        previous, self._state = self._state, state
        if state == "ok":
            if previous != "starting":
                logger.warning("the platform answers again; sending %d buffered readings", len(self.outbox))
        else:
            logger.warning("the platform is unreachable (%s); buffering to %s", detail, self.config.buffer_file)

    # -- commands and desired state ---------------------------------------------------------------
    def poll_heartbeat(self) -> None:
        assert self.http is not None  # heartbeats are HTTP
        try:
            answer = self.http.heartbeat()
        except Unreachable as exc:  # the sender says when the platform goes and comes back
            logger.debug("heartbeat failed: %s", exc)
            return
        for command in answer.get("commands", []):
            self._run_command(command)
        desired = answer.get("desired")
        if isinstance(desired, dict):
            self._apply_desired(desired)

    def _take_inbound(self) -> None:
        while True:
            try:
                kind, doc = self.mqtt.inbound.get_nowait()
            except Exception:  # queue.Empty
                return
            if kind == "command" and isinstance(doc, dict):
                self._run_command(doc)
            elif kind == "desired" and isinstance(doc, dict):
                self._apply_desired(doc)

    def _run_command(self, command: dict[str, Any]) -> None:
        command_id, name = command.get("id"), command.get("name")
        if not isinstance(command_id, str) or not isinstance(name, str):
            return
        if self.on_command is None:
            status, result = "failed", {"error": "this device has no command handler"}
        else:
            try:
                status, result = "succeeded", self.on_command(name, command.get("params") or {})
            except Exception as exc:  # the user's code: its failure is the command's result
                status, result = "failed", {"error": f"{type(exc).__name__}: {exc}"}
        logger.info("command %s (%s): %s", command_id, name, status)
        try:
            self.link.ack(command_id, status, result)
        except Unreachable as exc:  # not acknowledged: the platform sends it again, or it expires
            logger.warning("command %s not acknowledged: %s", command_id, exc)

    def _apply_desired(self, desired: dict[str, Any]) -> None:
        version, delta = desired.get("version"), desired.get("delta")
        if not isinstance(delta, dict) or not delta or version == self._desired_version or self.on_desired is None:
            return
        try:
            reported = self.on_desired(delta)
        except Exception:
            logger.exception("the desired-state handler failed")
            return
        self._desired_version = version if isinstance(version, int) else None
        if reported:
            try:
                self.link.report(reported)
            except Unreachable as exc:
                logger.warning("reported state not sent: %s", exc)
                self._desired_version = None  # applied again, and reported, at the next heartbeat
