"""Rules, alerts and notifications."""
