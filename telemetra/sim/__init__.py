"""A device simulator and load generator: realistic values, any transport."""
