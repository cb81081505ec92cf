"""The one settings object: environment variables prefixed ``TELEMETRA_``, optionally from ``.env``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# settings sits above domain (docs/architecture.md): a value is checked by the domain's own parser, and fails at
# start naming its setting. The domain never imports the settings.
from telemetra.domain.thresholds import parse_thresholds
from telemetra.errors import ConfigError

if TYPE_CHECKING:
    from telemetra.nats_connection import NatsTls

__all__ = ["Settings", "load_settings", "DEFAULT_MQTT_CLIENT_ID"]

# Not the host name: a container gets a new one at each start, and a new id is a new, empty session.
DEFAULT_MQTT_CLIENT_ID = "telemetra-ingest"


class Settings(BaseSettings):
    """Every tunable of Telemetra, with defaults that make ``make run`` work on a laptop."""

    model_config = SettingsConfigDict(env_prefix="TELEMETRA_", env_file=".env", extra="ignore")

    database_url: str = Field(
        "sqlite:///./telemetra.db",
        description="Where data lives: `sqlite:///path.db` (embedded default) or `postgresql://user@host/db`.",
    )
    admin_key: str | None = Field(
        None,
        repr=False,
        description="The operator's key for /api/v1/admin routes. When unset, one is generated at first "
        "start, stored hashed and printed once.",
    )
    host: str = Field("127.0.0.1", description="Interface `telemetra serve` listens on.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port `telemetra serve` listens on.")
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="Proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed "
        "(comma-separated addresses or networks; `*` for any): behind a load balancer "
        "or an ingress, its addresses, so that the per-address login limit counts "
        "clients, not the proxy.",
    )
    max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest request body (and MQTT or NATS payload) accepted; larger ones get 413."
    )
    max_header_bytes: int = Field(
        16_384,
        ge=1024,
        le=1_048_576,
        description="Largest total size of a request's headers; larger (or more than 100 headers) get 431.",
    )
    http_header_timeout_s: float = Field(
        10.0,
        gt=0,
        le=300,
        description="A request must send its whole header block within this many seconds of "
        "its first byte (or of the connection's opening), else the connection "
        "is closed: a client sending headers a byte at a time holds nothing long.",
    )
    http_max_connections: int = Field(
        2048,
        ge=1,
        description="Most HTTP connections `telemetra serve` holds open; one more is closed at once "
        "(keep it below the process's open-file limit).",
    )
    keys_file: str | None = Field(
        None,
        description="Where `telemetra serve` writes the keys it creates (the admin key at first start, "
        "the demo key) when its output is not a terminal, readable only by its owner; by "
        "default `<database file>.keys` beside a SQLite file, else `telemetra.keys` in the "
        "working directory. On a terminal they are printed, never written.",
    )
    cors_origins: str = Field(
        "",
        description="Browser origins allowed to call the API (comma-separated, e.g. "
        "`https://dash.example.com`); none by default: CORS is off.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Lowest level of log lines written."
    )
    log_file: str | None = Field(None, description="Also write logs to this file, rotated at 10 MB with 5 backups.")
    log_format: Literal["text", "json"] = Field(
        "text",
        description="`json`: one JSON object a line (`time`, `level`, `logger`, `message`, and "
        "`exc_info` with a traceback), for log collectors.",
    )
    open_registration: bool = Field(
        False, description="Let devices register without a key; they land in the `default` tenant."
    )
    keep_raw_messages: bool = Field(
        True, description="Keep each accepted message as sent (GET /api/v1/devices/telemetry), besides its points."
    )
    sqlite_cache_mb: int = Field(
        64,
        ge=2,
        le=4096,
        description="Page cache of the SQLite connection that writes, in MiB (filled as "
        "pages are used). Smaller on a device short of memory; ingest slows as "
        "the stored series outgrow it.",
    )
    max_keys_per_message: int = Field(256, ge=1, description="Most values one telemetry message may carry.")
    max_key_length: int = Field(128, ge=1, description="Longest telemetry key name, in characters.")
    max_json_depth: int = Field(
        8, ge=1, description="Deepest nesting of objects and arrays in a body or an MQTT or NATS payload."
    )
    max_future_skew_s: int = Field(
        86_400, ge=0, description="How far in the future a message timestamp may lie, in seconds."
    )
    oldest_timestamp_year: int = Field(
        2000, ge=1970, description="Timestamps before 1 January of this year are refused."
    )
    online_window_s: int = Field(300, ge=1, description="A device seen within this many seconds counts as online.")
    presence_check_s: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="How often devices that fell silent past their `offline_after_s` are reported offline, in seconds.",
    )
    activity_flush_interval_s: float = Field(
        2.0, gt=0, description="How often key usage counts and device last-seen times reach the database."
    )
    auth_cache_ttl_s: float = Field(
        300.0,
        ge=0,
        le=86_400,
        description="How long an authenticated key (and its device), or a device a batch "
        "names, is kept in memory. A change through this process applies at "
        "once, through another within about `auth_epoch_poll_s`. 0: off.",
    )
    auth_epoch_poll_s: float = Field(
        1.0,
        gt=0,
        le=60,
        description="How often each process reads the credential epoch, which every key or "
        "device change moves, and empties its authentication cache when it moved.",
    )
    pg_pool_size: int = Field(10, ge=1, description="Connections in the PostgreSQL pool.")
    ingest_max_batch_messages: int = Field(
        2000, ge=1, description="Most messages the writer commits in one transaction."
    )
    ingest_flush_interval_ms: float = Field(
        5.0,
        ge=0,
        description="How long the writer waits for more messages before committing a batch that "
        "is not full, in milliseconds (group commit). A batch holding only single "
        "HTTP messages does not wait: their senders send nothing more until answered.",
    )
    ingest_writers: int = Field(
        2,
        ge=1,
        le=8,
        description="Batches in the store's hands at once: on PostgreSQL each is written on its own "
        "connection; on SQLite they wait in turn on the single writer, the next "
        "starting as the previous commits.",
    )
    ingest_max_queue_messages: int = Field(
        20_000,
        ge=1,
        description="Most messages waiting for the writer; past it HTTP answers 503 and the "
        "broker sources stop pulling.",
    )
    # Issue 18: one tenant's load never turns another's requests away; a stopping process never hangs.
    ingest_tenant_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Share of TELEMETRA_INGEST_MAX_QUEUE_MESSAGES one tenant's HTTP messages may "
        "hold; past it that tenant alone gets 429 (code tenant_queue_full), and the "
        "others still get in. 1 turns the per-tenant share off.",
    )
    ingest_stop_timeout_s: float = Field(
        10.0,
        gt=0,
        le=600,
        description="How long a stopping `serve` or `worker` gives the messages in hand to "
        "commit and be acknowledged, in seconds; what is left then stays "
        "unacknowledged (the broker sends it again) and the process exits.",
    )
    rollup_seal_lag_s: float = Field(
        60.0,
        ge=1,
        le=3600,
        description="How far behind the clock the hourly statistics are sealed, in seconds: "
        "points older than this when they arrive are merged by their own batch "
        "(slower); newer ones wait for the sealer, which runs every few seconds.",
    )
    batch_max_messages: int = Field(5000, ge=1, description="Most messages in one POST /api/v1/telemetry/batch.")
    simulate_devices: int = Field(
        0,
        ge=0,
        le=1000,
        description="Demo devices simulated inside `telemetra serve` (tenant `demo`), one "
        "message each every 5 s; `make run` uses 5.",
    )
    energy_keys: str = Field(
        "instant_power", description="Power keys (W) whose energy (Wh per hour) is kept as a rollup, comma-separated."
    )
    energy_max_hold_s: float = Field(
        3600,
        gt=0,
        le=7 * 86400,
        description="How long a power value holds without a newer one; the rest of a "
        "longer gap counts as unknown. A change applies to new data; "
        "`telemetra rollup rebuild` applies it to the past.",
    )
    # Bounds of every query (reports, statistics, series): range, time, rows, connections.
    query_max_range_days: int = Field(
        366,
        ge=1,
        le=36_600,
        description="Widest time range of a report, statistics or aggregated series read "
        "from the hourly rollups, in days; wider answers 422 `range_too_large`.",
    )
    query_max_raw_range_days: int = Field(
        31,
        ge=1,
        le=36_600,
        description="Widest time range of an answer computed from every raw point in it "
        "(buckets finer than an hour or not made of whole UTC hours, energy in "
        "a zone with a half-hour offset, `/processed_data` anomalies), in days.",
    )
    query_timeout_s: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="Time budget of one query's database reads, in seconds; past it the "
        "reads are stopped (PostgreSQL cancels the statement, SQLite "
        "interrupts it) and the answer is 503 `query_timeout`.",
    )
    query_max_rows: int = Field(
        500_000,
        ge=1000,
        description="Most stored rows (points or hourly rollups) one query may read; past "
        "it the answer is 422 `too_many_rows`. Bounds a query's memory.",
    )
    query_pool_size: int = Field(
        3,
        ge=1,
        le=100,
        description="Connections for queries, apart from those of ingest and of "
        "authentication (PostgreSQL: a pool besides `TELEMETRA_PG_POOL_SIZE`; "
        "SQLite: read connections): more concurrent queries wait their turn "
        "within their time budget.",
    )
    anomaly_thresholds: str = Field(
        "",
        description="Per-key ranges outside which a value is an anomaly (`GET /processed_data`), e.g. "
        "`temperature=-10..35,humidity=..90`.",
    )
    rules_silence_check_s: float = Field(
        10.0, gt=0, le=3600, description="How often no-data rules look for silent devices, in seconds."
    )
    rules_lease_s: float = Field(
        15.0,
        ge=1,
        le=300,
        description="How long a process holds its share of the devices for rule evaluation "
        "without renewing it (every third of this); a process that dies passes "
        "its share on after it.",
    )
    notify_interval_s: float = Field(
        1.0, gt=0, le=60, description="How often the notification outbox is checked for due deliveries, in seconds."
    )
    notify_backoff_base_s: float = Field(
        5.0, gt=0, le=3600, description="First retry delay of a failed notification; it doubles at each attempt."
    )
    notify_max_attempts: int = Field(
        10, ge=1, le=100, description="Attempts before a notification is given up (it stays listed as failed)."
    )
    outbound_allow: str = Field(
        "",
        description="Private ranges and host names that webhooks and mail servers may reach, comma-separated "
        "(`127.0.0.1/32,::1/128,localhost`); by default notifications go to public addresses only.",
    )
    outbound_ca_dir: str | None = Field(
        None,
        description="Directory that e-mail channels' `ca_file` must name a file in; unset: no `ca_file` is "
        "accepted (the system's CAs are used).",
    )
    mqtt_url: str | None = Field(
        None,
        description="MQTT broker to take telemetry from (`mqtt://host:1883`); `telemetra serve` and "
        "`telemetra worker --source mqtt` subscribe when it is set.",
    )
    mqtt_client_id: str = Field(
        DEFAULT_MQTT_CLIENT_ID,
        min_length=1,
        max_length=128,
        description="MQTT client id, which names the broker's persistent session: the same across restarts "
        "and host names, so that a restarted worker gets back what the broker kept for it. With "
        "a share group, one per worker (the StatefulSet pod name: `telemetra-mqtt-0`, ...).",
    )
    mqtt_username: str | None = Field(None, description="User Telemetra connects to the broker as.")
    mqtt_password: str | None = Field(None, repr=False, description="Password of `TELEMETRA_MQTT_USERNAME`.")
    mqtt_ca_file: str | None = Field(
        None,
        description="CA certificate (PEM) the MQTT broker's certificate must chain to; with it, or with an "
        "`mqtts://` URL (port 8883 by default), Telemetra connects over TLS.",
    )
    mqtt_cert_file: str | None = Field(
        None,
        description="Client certificate (PEM) Telemetra presents to the MQTT broker, for brokers that require one.",
    )
    mqtt_key_file: str | None = Field(None, description="Private key (PEM) of `TELEMETRA_MQTT_CERT_FILE`.")
    tls_cert_file: str | None = Field(
        None, description="Certificate chain (PEM) `telemetra serve` answers HTTPS with (or `--tls-cert`)."
    )
    tls_key_file: str | None = Field(None, description="Private key (PEM) of the HTTPS certificate (or `--tls-key`).")
    mqtt_shared_group: str | None = Field(
        None,
        pattern=r"^[^/+#]*$",
        description="Share group (`$share/<group>/devices/+/telemetry`) for several MQTT workers to split the "
        "load, each with its own `TELEMETRA_MQTT_CLIENT_ID`. Unset: a plain subscription, the "
        "safe default (Mosquitto 2.0 does not keep shared subscriptions over its own restart; see "
        "README, MQTT).",
    )
    mqtt_receive_maximum: int = Field(
        1000,
        ge=1,
        le=65535,
        description="Unacknowledged QoS 1 messages the broker may send at once (the MQTT flow-control window).",
    )
    mqtt_session_expiry_s: int = Field(
        604_800,
        ge=0,
        description="How long the broker keeps a worker's session (and the messages it has not "
        "acknowledged) while the worker is away, in seconds.",
    )
    nats_url: str | None = Field(
        None,
        description="NATS server with JetStream (`nats://host:4222`) to take telemetry from; "
        "`telemetra worker --source nats` consumes when it is set.",
    )
    nats_ca_file: str | None = Field(
        None,
        description="CA certificate (PEM) the NATS server's certificate must chain to; with it, a client "
        "certificate, or a `tls://` URL, Telemetra connects to NATS over TLS only.",
    )
    nats_cert_file: str | None = Field(
        None, description="Client certificate (PEM) Telemetra presents to NATS, for servers that verify clients."
    )
    nats_key_file: str | None = Field(None, description="Private key (PEM) of `TELEMETRA_NATS_CERT_FILE`.")
    nats_stream: str = Field("TELEMETRY", description="JetStream stream holding telemetry subjects.")
    nats_durable: str = Field("telemetra", description="Durable consumer name shared by every worker.")
    nats_fetch_batch: int = Field(500, ge=1, le=10_000, description="Messages fetched per pull.")
    nats_ack_wait_s: float = Field(
        60.0,
        ge=1,
        le=3600,
        description="Seconds JetStream waits for a fetched message's ack before it hands the "
        "message out again (a worker that died): longer than any commit.",
    )
    command_transport: Literal["auto", "mqtt", "nats", "none"] = Field(
        "auto",
        description="How commands reach devices: `mqtt` (devices/{id}/commands), `nats` (commands.{id}), "
        "`none` (HTTP heartbeats only); `auto` picks MQTT when its URL is set, else NATS.",
    )
    command_default_ttl_s: int = Field(
        3600, ge=1, description="How long a command waits for its device when the request gives no `ttl_s`."
    )
    command_max_ttl_s: int = Field(604_800, ge=1, description="Longest `ttl_s` a command may ask for, in seconds.")
    command_expiry_check_s: float = Field(
        5.0, gt=0, le=3600, description="How often commands past their TTL are marked expired, in seconds."
    )
    send_command_topic: str = Field(
        "send_command", min_length=1, description="Topic (or NATS subject) seed 001's POST /send publishes on."
    )
    redis_channel: str = Field(
        "telemetra:live",
        min_length=1,
        description="Redis pub/sub channel of the live feed; deployments that share a Redis each need their own.",
    )
    stream_buffer_events: int = Field(
        1000, ge=1, le=100_000, description="Events a live-stream client may fall behind by before it is disconnected."
    )
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
    redis_url: str | None = Field(
        None,
        repr=False,
        description="Redis (`redis://host:6379/0`) shared by every `telemetra serve` process: "
        "it holds the rate-limit counters and carries the live feed. Without it "
        "the counters are in memory, per process, and each process streams "
        "only the points it committed.",
    )

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return url

    @field_validator("anomaly_thresholds")
    @classmethod
    def _thresholds(cls, text: str) -> str:
        parse_thresholds(text)  # fail at start, naming the setting
        return text

    @field_validator("outbound_allow")
    @classmethod
    def _outbound_allow(cls, text: str) -> str:
        from telemetra.notify.outbound import parse_allow

        parse_allow(text)  # fail at start, naming the setting and the entry
        return text

    @field_validator("admin_key")
    @classmethod
    def _strong_admin_key(cls, key: str | None) -> str | None:
        if key is not None and len(key) < 24:
            raise ValueError("must be at least 24 characters (or unset to generate one)")
        return key

    @field_validator("jwt_secret")
    @classmethod
    def _strong_jwt_secret(cls, secret: str | None) -> str | None:
        if secret is not None and len(secret) < 32:
            raise ValueError("must be at least 32 characters (or unset to generate one per process)")
        return secret

    @field_validator(
        "login_failures_per_device",
        "login_failures_per_ip",
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

    @model_validator(mode="after")
    def _tls_pairs(self) -> "Settings":
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("TELEMETRA_TLS_CERT_FILE and TELEMETRA_TLS_KEY_FILE go together")
        if self.mqtt_key_file and not self.mqtt_cert_file:
            raise ValueError("TELEMETRA_MQTT_KEY_FILE needs TELEMETRA_MQTT_CERT_FILE")
        if bool(self.nats_cert_file) != bool(self.nats_key_file):
            raise ValueError("TELEMETRA_NATS_CERT_FILE and TELEMETRA_NATS_KEY_FILE go together")
        return self

    @model_validator(mode="after")
    def _share_group_ids(self) -> "Settings":
        # Workers of a share group under one client id would take the session from each other without end.
        if self.mqtt_shared_group and self.mqtt_client_id == DEFAULT_MQTT_CLIENT_ID:
            raise ValueError(
                "TELEMETRA_MQTT_SHARED_GROUP needs a TELEMETRA_MQTT_CLIENT_ID of its own for each "
                "worker (e.g. the StatefulSet pod name)"
            )
        return self

    @property
    def nats_tls(self) -> "NatsTls | None":
        """TLS for every connection to NATS, or None for plain text."""
        from telemetra.nats_connection import nats_tls_from

        return nats_tls_from(self.nats_url or "", self.nats_ca_file, self.nats_cert_file, self.nats_key_file)

    @model_validator(mode="after")
    def _jwt_keys(self) -> "Settings":
        if self.jwt_algorithm != "HS256" and not (self.jwt_private_key_file and self.jwt_public_key_file):
            raise ValueError(
                f"jwt_algorithm {self.jwt_algorithm} needs TELEMETRA_JWT_PRIVATE_KEY_FILE and "
                "TELEMETRA_JWT_PUBLIC_KEY_FILE"
            )
        return self

    def configure_logging_level(self) -> int:
        """Return the numeric logging level."""
        return logging.getLevelName(self.log_level)


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning a validation failure into a message that names the setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"TELEMETRA_{str(err['loc'][0]).upper()}: {err['msg']}" if err["loc"] else err["msg"]
            for err in exc.errors()
        )
        raise ConfigError(f"Invalid setting: {problems}") from exc
