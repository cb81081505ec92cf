"""Settings: wrong values fail at start naming the setting; every setting is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from telemetra.errors import ConfigError
from telemetra.settings import Settings, load_settings

CONFIGURATION = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


@pytest.mark.parametrize(
    "env, named",
    [
        ({"TELEMETRA_PORT": "99999"}, "TELEMETRA_PORT"),
        ({"TELEMETRA_DATABASE_URL": "mysql://x"}, "TELEMETRA_DATABASE_URL"),
        ({"TELEMETRA_LOG_LEVEL": "LOUD"}, "TELEMETRA_LOG_LEVEL"),
        ({"TELEMETRA_ADMIN_KEY": "short"}, "TELEMETRA_ADMIN_KEY"),
        ({"TELEMETRA_MAX_BODY_BYTES": "ten"}, "TELEMETRA_MAX_BODY_BYTES"),
        ({"TELEMETRA_JWT_SECRET": "short-secret"}, "TELEMETRA_JWT_SECRET"),
        ({"TELEMETRA_JWT_ALGORITHM": "none"}, "TELEMETRA_JWT_ALGORITHM"),
        ({"TELEMETRA_JWT_ALGORITHM": "EdDSA"}, "TELEMETRA_JWT_PRIVATE_KEY_FILE"),
        ({"TELEMETRA_RATE_LIMIT_TENANT": "lots"}, "TELEMETRA_RATE_LIMIT_TENANT"),
        ({"TELEMETRA_RATE_LIMIT_NAMESPACE": "a b"}, "TELEMETRA_RATE_LIMIT_NAMESPACE"),
        ({"TELEMETRA_TLS_CERT_FILE": "/etc/telemetra/server.pem"}, "TELEMETRA_TLS_KEY_FILE"),
        ({"TELEMETRA_MQTT_KEY_FILE": "/etc/telemetra/client.key"}, "TELEMETRA_MQTT_CERT_FILE"),
        ({"TELEMETRA_MQTT_SHARED_GROUP": "telemetra"}, "TELEMETRA_MQTT_CLIENT_ID"),  # workers of a group, one id
        ({"TELEMETRA_MQTT_SHARED_GROUP": "a/b", "TELEMETRA_MQTT_CLIENT_ID": "w-0"}, "TELEMETRA_MQTT_SHARED_GROUP"),
    ],
)
def test_wrong_setting_is_named(monkeypatch, env, named) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as err:
        load_settings(_env_file=None)
    assert named in err.value.message
    if "ADMIN_KEY" in named or "JWT_SECRET" in named:
        assert "short" not in err.value.message  # a secret is never echoed


def test_every_setting_has_help_and_the_reference_is_current() -> None:
    """docs/configuration.md is written from the settings class: a setting added, changed or removed without
    rewriting it fails here (`python -m telemetra.settings.reference > docs/configuration.md`)."""
    from telemetra.settings.reference import GROUPS, reference_markdown

    reference = CONFIGURATION.read_text()
    assert reference == reference_markdown(), "docs/configuration.md is stale: rewrite it from the settings"
    assert sum(len(group.model_fields) for _, group in GROUPS) == len(Settings.model_fields)
    for name, field in Settings.model_fields.items():
        assert field.description, name
        assert re.search(rf"`TELEMETRA_{name.upper()}`", reference), f"TELEMETRA_{name.upper()} missing"
