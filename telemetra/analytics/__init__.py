"""Queries over stored telemetry: statistics, anomalies, hourly means, the energy report."""
