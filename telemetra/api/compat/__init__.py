"""The HTTP contracts of the systems Telemetra unifies (seeds 000, 001, 003 and 004), one module a system,
each a thin adapter: it translates the contract's requests and answers and calls the services, which hold
the logic. Seed 002's routes are the core device API (``api/routes``).

- ``objects_api``: seed 000's IoT objects API and its edge statistics.
- ``energy_api``: seed 001's energy management API (/message, /send, /report).
- ``device_login_api``: seed 003's device login and sensor data.
- ``hub_watch_api``: seed 004's IoT hub monitoring (watches of devices' live telemetry).
"""
