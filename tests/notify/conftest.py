"""Fixtures for the notification tests."""

from __future__ import annotations

import logging

# aiosmtpd logs every connection at INFO from its own thread, also after a test's output capture closed.
logging.getLogger("mail.log").setLevel(logging.WARNING)
