"""Fixtures for the notification tests."""

from __future__ import annotations

import logging

import pytest

from tests.notify.certs import CertificateFiles, make_certificates

# aiosmtpd logs every connection at INFO from its own thread, also after a test's output capture closed.
logging.getLogger("mail.log").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> CertificateFiles:
    """A CA (``ca_file``, for clients to trust) and a certificate it signed for 127.0.0.1, made once per run."""
    return make_certificates(tmp_path_factory.mktemp("tls"))
