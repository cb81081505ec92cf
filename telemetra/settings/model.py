"""The one settings object: environment variables prefixed ``TELEMETRA_``, optionally from ``.env``.

Its fields are declared by concern in the modules beside this one; the checks that span groups are here.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from telemetra.errors import ConfigError
from telemetra.settings.access import AccessSettings
from telemetra.settings.ingest import IngestSettings
from telemetra.settings.processing import ProcessingSettings
from telemetra.settings.server import ServerSettings
from telemetra.settings.transport import DEFAULT_MQTT_CLIENT_ID, TransportSettings


# pydantic lists inherited fields from the last base to the first: the groups are named in reverse so that
# the fields keep their order (server first), which is the order of the problems load_settings reports.
class Settings(AccessSettings, TransportSettings, ProcessingSettings, IngestSettings, ServerSettings, BaseSettings):
    """Every tunable of Telemetra, with defaults that make ``make run`` work on a laptop."""

    model_config = SettingsConfigDict(env_prefix="TELEMETRA_", env_file=".env", extra="ignore")

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

    @model_validator(mode="after")
    def _jwt_keys(self) -> "Settings":
        if self.jwt_algorithm != "HS256" and not (self.jwt_private_key_file and self.jwt_public_key_file):
            raise ValueError(
                f"jwt_algorithm {self.jwt_algorithm} needs TELEMETRA_JWT_PRIVATE_KEY_FILE and "
                "TELEMETRA_JWT_PUBLIC_KEY_FILE"
            )
        return self


# Variables with the prefix that are read elsewhere, not settings (the simulator's key option).
NOT_SETTINGS = frozenset({"TELEMETRA_SIM_KEY"})


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """The ``TELEMETRA_*`` variables that name no setting: a typo, or a setting since removed, would otherwise
    be ignored without a word."""
    known = {f"TELEMETRA_{name.upper()}" for name in Settings.model_fields} | NOT_SETTINGS
    return sorted(name for name in environ if name.upper().startswith("TELEMETRA_") and name.upper() not in known)


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
