"""Logging set-up, done once by the CLI; a filter keeps secrets out of every line."""

from __future__ import annotations

import logging
import logging.handlers
import re

__all__ = ["configure_logging", "RedactSecrets"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FILE_BYTES = 10 * 1024 * 1024
LOG_FILE_BACKUPS = 5

# Our keys (tlma_/tlmt_/tlmd_ + 43 characters), api_key/token/password query parameters, and JWTs.
_SECRET_PATTERNS = (
    (re.compile(r"(tlm[atd]_)[A-Za-z0-9_-]{8,}"), r"\1[REDACTED]"),
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


def configure_logging(level: str, log_file: str | None = None) -> None:
    """Send logs to stderr (and a rotating file), every handler behind the redaction filter."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file:
        handlers.append(logging.handlers.RotatingFileHandler(log_file, maxBytes=LOG_FILE_BYTES,
                                                             backupCount=LOG_FILE_BACKUPS))
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler.addFilter(RedactSecrets())
        root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
