"""Commands to devices: their lifecycle in the database, and the transports that carry them."""
