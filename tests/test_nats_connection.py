"""Which NATS connections use TLS, and what of a NATS URL may be logged."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from telemetra.nats_connection import NatsTls, nats_tls_from, url_without_credentials
from telemetra.settings import Settings


def test_tls_is_wanted_with_a_tls_url_or_any_certificate_file() -> None:
    assert nats_tls_from("nats://127.0.0.1:4222", None, None, None) is None
    assert nats_tls_from("tls://127.0.0.1:4222", None, None, None) == NatsTls()
    assert nats_tls_from("nats://127.0.0.1:4222", "/ca.pem", None, None) == NatsTls("/ca.pem")
    assert nats_tls_from("nats://h:4222", None, "/c.pem", "/c.key") == NatsTls(None, "/c.pem", "/c.key")
    settings = Settings(nats_url="nats://h:4222", nats_ca_file="/ca.pem")
    assert settings.nats_tls == NatsTls("/ca.pem")


def test_a_logged_url_carries_no_credentials() -> None:
    assert url_without_credentials("tls://telemetra:secret@nats.example.com:4222") == "tls://nats.example.com:4222"
    assert url_without_credentials("nats://s3cr3t-token@127.0.0.1") == "nats://127.0.0.1"
    assert url_without_credentials("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222"


def test_a_client_key_without_its_certificate_is_a_configuration_error() -> None:
    with pytest.raises(ValidationError, match="TELEMETRA_NATS_CERT_FILE and TELEMETRA_NATS_KEY_FILE go together"):
        Settings(nats_url="nats://h:4222", nats_key_file="/c.key")
