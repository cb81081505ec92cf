"""Settings of access: client limits, device login tokens, login and rate limits, and the Redis they share."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator


class AccessSettings(BaseModel):
    """Watches and batch bodies, tokens, login and rate limits, Redis (a group of ``Settings``)."""

    watch_inactivity_s: float = Field(
        3600,
        gt=0,
        description="A watch of the monitoring API (seed 004) not queried for this many seconds is "
        "stopped and shows `inactive`.",
    )
    batch_max_body_bytes: int = Field(16_777_216, ge=1024, description="Largest body of POST /api/v1/telemetry/batch.")

    jwt_algorithm: Literal["HS256", "RS256", "EdDSA"] = Field(
        "HS256",
        description="Signature algorithm of device login tokens; tokens signed otherwise are refused. "
        "HS256 uses `TELEMETRA_JWT_SECRET`; RS256 and EdDSA a key pair from files.",
    )
    jwt_secret: str | None = Field(
        None,
        repr=False,
        description="HS256 signing secret (32+ characters), the same for every process. When "
        "unset, each process makes its own: tokens then work only on the process "
        "that issued them.",
    )
    jwt_private_key_file: str | None = Field(
        None, description="PEM private key signing tokens (RS256: RSA, EdDSA: Ed25519)."
    )
    jwt_public_key_file: str | None = Field(None, description="PEM public key checking tokens (RS256 / EdDSA).")
    jwt_lifetime_s: int = Field(
        900, ge=30, le=86_400, description="How long a device login token is valid, in seconds."
    )
    login_failures_per_device: str = Field(
        "5/minute",
        description="Login attempts per device id (each counted before its password is checked) from "
        "the addresses it has not logged in from lately, together; each address it has "
        "logged in from has this budget of its own. Past it, `POST /auth/login` answers "
        "429 (a `limits` rate: `N/second|minute|hour|day`).",
    )
    login_failures_per_ip: str = Field(
        "30/minute",
        description="Login attempts per client address, whatever device they name (each counted "
        "before its password is checked); past it, `POST /auth/login` answers 429.",
    )
    login_known_address_ttl_s: int = Field(
        2_592_000,
        ge=60,
        le=31_536_000,
        description="How long after a device's successful login its client address keeps a login budget of its "
        "own (not spent by guesses from other addresses), in seconds.",
    )
    session_idle_s: int = Field(
        28_800,
        ge=60,
        le=2_592_000,
        description="A sign-in session unused for this many seconds ends (the person signs in again).",
    )
    session_absolute_s: int = Field(
        604_800,
        ge=300,
        le=31_536_000,
        description="A sign-in session ends this many seconds after the sign-in, however much it is used.",
    )
    signin_failures_per_account: str = Field(
        "5/15 minutes",
        description="Sign-in attempts per e-mail address (each counted before its password is checked; a "
        "successful sign-in starts the count again); past it, `POST /api/v1/session` answers 429.",
    )
    signin_failures_per_address: str = Field(
        "20/minute",
        description="Sign-in attempts per client address, whatever e-mail they name; past it, "
        "`POST /api/v1/session` answers 429.",
    )
    rate_limit_namespace: str = Field(
        "telemetra",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Prefix of the rate-limit counters in Redis: deployments sharing one Redis set different ones.",
    )
    rate_limits_enabled: bool = Field(
        True, description="Refuse requests past their rate limit with 429 (see the rate limit settings)."
    )
    rate_limit_device: str = Field(
        "60/minute", description="Requests per device (its key or its login token) to its own routes, telemetry aside."
    )
    rate_limit_device_telemetry: str = Field(
        "100/minute", description="Telemetry requests per device (POST /api/v1/devices/telemetry, POST /data)."
    )
    rate_limit_tenant: str = Field("6000/minute", description="Requests per tenant, over all its tenant keys.")
    rate_limit_batch: str = Field(
        "600/minute",
        description="Batch and backfill requests (POST /api/v1/telemetry/batch, "
        "POST /api/v1/devices/telemetry/batch) per tenant or device, "
        "apart from the other budgets.",
    )
    objects_api_open: str = Field(
        "",
        description="Tenants (comma-separated names) whose objects seed 000's objects API serves without a key, "
        "read-only (`/iot_objects`, `/iot_objects/{id}`, `/iot_objects/{id}/history`, "
        "`/iot_objects/by_client/{client}`, `/iot_data/{id}`), for edge code that sends no key. Off when empty "
        "(the default); a warning is logged at start while it is on.",
    )
    redis_url: str | None = Field(
        None,
        repr=False,
        description="Redis (`redis://host:6379/0`) shared by every `telemetra serve` process: "
        "it holds the rate-limit counters and carries the live feed. Without it "
        "the counters are in memory, per process, and each process streams "
        "only the points it committed.",
    )

    @field_validator("objects_api_open")
    @classmethod
    def _open_clients(cls, text: str) -> str:
        names = [n.strip() for n in text.split(",") if n.strip()]
        if any(any(ord(c) < 32 for c in n) or len(n) > 100 for n in names):
            raise ValueError("a comma-separated list of tenant names (1-100 printable characters each)")
        return ",".join(names)

    @field_validator("jwt_secret")
    @classmethod
    def _strong_jwt_secret(cls, secret: str | None) -> str | None:
        if secret is not None and len(secret) < 32:
            raise ValueError("must be at least 32 characters (or unset to generate one per process)")
        return secret

    @field_validator(
        "login_failures_per_device",
        "login_failures_per_ip",
        "signin_failures_per_account",
        "signin_failures_per_address",
        "rate_limit_device",
        "rate_limit_device_telemetry",
        "rate_limit_tenant",
        "rate_limit_batch",
    )
    @classmethod
    def _rate(cls, text: str) -> str:
        from limits import parse_many

        try:
            parse_many(text)
        except ValueError as exc:
            raise ValueError(f"not a rate like '60/minute': {exc}") from None
        return text
