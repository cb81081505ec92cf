"""Webhook signatures: a known vector, and verify() refusing everything but the exact body and secret."""

from __future__ import annotations

import pytest

from telemetra.notify.signing import SIGNATURE_HEADER, sign, verify

SECRET = "whsec-test-3f9a"
BODY = b'{"event":"alert.triggered","alert":{"id":1,"value":42.5}}'


def test_sign_matches_rfc_4231_test_case_2() -> None:
    assert sign("Jefe", b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_header_name() -> None:
    assert SIGNATURE_HEADER == "X-Telemetra-Signature"


def test_verify_accepts_the_signature_of_the_exact_body() -> None:
    header = sign(SECRET, BODY)
    assert verify(SECRET, BODY, header)
    assert verify(SECRET, BODY, f" {header.upper()} ")  # case and surrounding space do not matter


@pytest.mark.parametrize(
    "body",
    [
        BODY.replace(b"42.5", b"42.6"),
        BODY + b" ",  # same JSON document, different bytes
        BODY[:-1],
        b"",
    ],
)
def test_verify_rejects_a_tampered_body(body: bytes) -> None:
    assert not verify(SECRET, body, sign(SECRET, BODY))


def test_verify_rejects_a_wrong_secret() -> None:
    assert not verify("another-secret", BODY, sign(SECRET, BODY))
    assert not verify(SECRET, BODY, sign(SECRET + "x", BODY))


@pytest.mark.parametrize(
    "header",
    [
        "",
        "sha256=",
        "sha1=" + sign(SECRET, BODY)[len("sha256=") :],
        sign(SECRET, BODY)[len("sha256=") :],
        sign(SECRET, BODY) + "00",
        "sha256=é\udcff",
        "sha256=" + "0" * 64,
    ],
)
def test_verify_rejects_malformed_headers(header: str) -> None:
    assert not verify(SECRET, BODY, header)


def test_an_empty_secret_neither_signs_nor_verifies() -> None:
    with pytest.raises(ValueError):
        sign("", BODY)
    assert not verify("", BODY, "sha256=" + "0" * 64)
