"""Settings of what is done with stored data: query bounds, anomalies, rules and notifications."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

# settings sits above domain (docs/architecture.md): a value is checked by the domain's own parser, and fails at
# start naming its setting. The domain never imports the settings.
from telemetra.domain.thresholds import parse_thresholds


class ProcessingSettings(BaseModel):
    """Queries, anomaly thresholds, rules and notifications (a group of ``Settings``)."""

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
