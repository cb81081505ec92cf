"""The one settings object: environment variables prefixed ``TELEMETRA_``, optionally from ``.env``."""

from telemetra.settings.model import Settings, load_settings
from telemetra.settings.transport import DEFAULT_MQTT_CLIENT_ID

__all__ = ["Settings", "load_settings", "DEFAULT_MQTT_CLIENT_ID"]
