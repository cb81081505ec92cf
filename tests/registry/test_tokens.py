"""Login tokens: the pinned algorithm, required claims, expiry, and key pairs for RS256 and EdDSA."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from telemetra.domain.timeparse import utcnow
from telemetra.errors import ConfigError, Unauthorized
from telemetra.registry.tokens import TokenClaims, TokenCodec
from telemetra.settings import Settings, load_settings

SECRET = "s" * 64
CLAIMS = TokenClaims(device_id="raspberry1", tenant_id=3, password_version=2, credential_id="9f2c41d07a6b4e3c")


def _codec(**fields) -> TokenCodec:
    return TokenCodec(Settings(_env_file=None, jwt_secret=SECRET, **fields))


def _code(codec: TokenCodec, token: str) -> str:
    with pytest.raises(Unauthorized) as caught:
        codec.check(token)
    return caught.value.code


def test_a_token_carries_its_claims_and_a_short_life() -> None:
    codec, now = _codec(jwt_lifetime_s=60), utcnow()
    token = codec.issue(CLAIMS, now)

    payload = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert codec.check(token) == CLAIMS
    assert payload["sub"] == "raspberry1" and payload["tid"] == 3 and payload["exp"] - payload["iat"] == 60
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_expired_forged_and_unpinned_tokens_are_refused() -> None:
    codec, now = _codec(), utcnow()
    base = {
        "sub": "raspberry1",
        "tid": 3,
        "ver": 2,
        "cid": "9f2c41d07a6b4e3c",
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }

    assert _code(codec, codec.issue(CLAIMS, now - timedelta(hours=1))) == "token_expired"
    assert _code(codec, jwt.encode(base, "another secret of enough length!!", algorithm="HS256")) == "invalid_token"
    assert _code(codec, jwt.encode(base, SECRET, algorithm="HS512")) == "invalid_token"
    assert _code(codec, jwt.encode(base, None, algorithm="none")) == "invalid_token"
    for claim in ("exp", "iat", "sub", "tid", "ver", "cid"):
        assert (
            _code(codec, jwt.encode({k: v for k, v in base.items() if k != claim}, SECRET, algorithm="HS256"))
            == "invalid_token"
        )
    assert _code(codec, jwt.encode({**base, "tid": "3"}, SECRET, algorithm="HS256")) == "invalid_token"
    assert _code(codec, jwt.encode({**base, "cid": 7}, SECRET, algorithm="HS256")) == "invalid_token"


def test_without_a_secret_each_process_signs_with_its_own() -> None:
    one, two = TokenCodec(Settings(_env_file=None)), TokenCodec(Settings(_env_file=None))
    assert one.check(one.issue(CLAIMS, utcnow())) == CLAIMS
    assert _code(two, one.issue(CLAIMS, utcnow())) == "invalid_token"


@pytest.mark.parametrize("algorithm", ["RS256", "EdDSA"])
def test_key_pairs_sign_and_check(tmp_path, algorithm: str) -> None:
    private = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if algorithm == "RS256"
        else ed25519.Ed25519PrivateKey.generate()
    )
    (tmp_path / "key.pem").write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (tmp_path / "pub.pem").write_bytes(
        private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    codec = TokenCodec(
        Settings(
            _env_file=None,
            jwt_algorithm=algorithm,
            jwt_private_key_file=str(tmp_path / "key.pem"),
            jwt_public_key_file=str(tmp_path / "pub.pem"),
        )
    )

    token = codec.issue(CLAIMS, utcnow())

    assert codec.check(token) == CLAIMS
    assert jwt.get_unverified_header(token)["alg"] == algorithm
    # A public key is public: an HS256 token "signed" with it must not pass (the classic confusion attack).
    assert _code(codec, _hmac_token((tmp_path / "pub.pem").read_bytes())) == "invalid_token"


def _hmac_token(secret: bytes) -> str:
    # Built by hand: PyJWT itself refuses a PEM key as an HMAC secret.
    def part(raw: bytes) -> bytes:
        return base64.urlsafe_b64encode(raw).rstrip(b"=")

    signing_input = (
        part(b'{"alg":"HS256","typ":"JWT"}')
        + b"."
        + part(b'{"sub":"raspberry1","tid":3,"ver":2,"cid":"9f2c41d07a6b4e3c","iat":1,"exp":99999999999}')
    )
    return (signing_input + b"." + part(hmac.new(secret, signing_input, hashlib.sha256).digest())).decode()


def test_settings_refuse_weak_or_incomplete_signing_configuration() -> None:
    with pytest.raises(ConfigError, match="TELEMETRA_JWT_SECRET"):
        load_settings(_env_file=None, jwt_secret="short")
    with pytest.raises(ConfigError, match="TELEMETRA_JWT_PRIVATE_KEY_FILE"):
        load_settings(_env_file=None, jwt_algorithm="RS256")
    with pytest.raises(ConfigError, match="TELEMETRA_LOGIN_FAILURES_PER_DEVICE"):
        load_settings(_env_file=None, login_failures_per_device="lots")
