"""Logging set-up, done once by the CLI; a filter keeps secrets out of every line."""

from __future__ import annotations

import logging
import logging.handlers
import re

from pythonjsonlogger.json import JsonFormatter

__all__ = ["configure_logging", "RedactSecrets"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The same fields as JSON, under the names log collectors look for.
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
JSON_NAMES = {"asctime": "time", "levelname": "level", "name": "logger"}
LOG_FILE_BYTES = 10 * 1024 * 1024
LOG_FILE_BACKUPS = 5

# Our keys and session ids (tlma_/tlmt_/tlmd_/tlms_ + 43 characters), api_key/token/password query parameters, and JWTs.
_SECRET_PATTERNS = (
    (re.compile(r"(tlm[atds]_)[A-Za-z0-9_-]{8,}"), r"\1[REDACTED]"),
    (re.compile(r"((?:api_key|apikey|token|password)=)[^&\s\"']+", re.IGNORECASE), r"\1[REDACTED]"),
    # A JWT anywhere (a login token in a header dump, say): base64url header and payload start with '{"'.
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), "[REDACTED JWT]"),
)


def redact(text: str) -> str:
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrite a record's message so that no key, token or password reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def _formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter(JSON_FIELDS, rename_fields=JSON_NAMES)
    return logging.Formatter(LOG_FORMAT)


def configure_logging(level: str, log_file: str | None = None, log_format: str = "text") -> None:
    """Send logs to stderr (and a rotating file), as text or JSON lines, every handler behind the redaction
    filter."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file:
        handlers.append(
            logging.handlers.RotatingFileHandler(log_file, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_BACKUPS)
        )
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        handler.setFormatter(_formatter(log_format))
        handler.addFilter(RedactSecrets())
        root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
